// CPU reference: embedding gather.
#include "stratos/error.h"
#include "stratos/ops/embedding.h"

namespace stratos {

void embedding_cpu(const EmbeddingParams& p) {
  const size_t row_bytes = static_cast<size_t>(p.hidden) * dtype_bytes(p.dtype);
  for (int64_t t = 0; t < p.num_tokens; ++t) {
    const int32_t id = p.ids[t];
    STRATOS_CHECK(id >= 0 && id < p.vocab, "embedding", "token id out of range");
    std::memcpy(static_cast<char*>(p.out) + t * row_bytes,
                static_cast<const char*>(p.table) + static_cast<size_t>(id) * row_bytes, row_bytes);
  }
}

}  // namespace stratos
