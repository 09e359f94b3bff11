// Stand-in for gemm_cublas.cu where cuBLAS is not installed: the rest of the CUDA build still
// links, and the GEMM says why it is missing.
#include "stratos/error.h"
#include "stratos/ops/gemm.h"

namespace stratos {

bool gemm_cuda_available() { return false; }

void gemm_cuda(const GemmParams&, void*) {
  throw Error("gemm: this addon was built without cuBLAS (cublasLt.h was not found at build time)");
}

}  // namespace stratos
