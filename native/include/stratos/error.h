// Errors thrown by launchers and references; the binding turns them into JavaScript errors.
#pragma once

#include <stdexcept>
#include <string>

namespace stratos {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Checks an argument the TypeScript layer should already have checked: a failure here is a bug
// in native/index.ts, reported with the op and the condition.
#define STRATOS_CHECK(cond, op, msg)                                                      \
  do {                                                                                    \
    if (!(cond)) throw ::stratos::Error(std::string(op) + ": " + (msg) + " (" #cond ")"); \
  } while (0)

}  // namespace stratos
