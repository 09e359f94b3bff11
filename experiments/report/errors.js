// Loaded first in the report page: records every error (uncaught, rejected, console.error) on
// document.documentElement.dataset.errors, so a headless browser test sees it in the dumped DOM.
(function () {
  var errors = [];
  function record(msg) {
    errors.push(String(msg));
    document.documentElement.dataset.errors = errors.join(' | ');
  }
  window.__stratosRecordError = record;
  window.addEventListener('error', function (e) { record(e.message); });
  window.addEventListener('unhandledrejection', function (e) { record(e.reason); });
  var consoleError = console.error;
  console.error = function () { record(Array.prototype.join.call(arguments, ' ')); consoleError.apply(console, arguments); };
})();
