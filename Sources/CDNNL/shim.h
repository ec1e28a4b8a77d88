// oneDNN's C API (Debian 12: libdnnl-dev 2.6.3, OpenMP runtime).
#include <dnnl.h>
#include <dlfcn.h>

// The OpenMP runtime oneDNN was built with sets its thread count. Looked up at run time (libdnnl
// loads libgomp), so linking needs no OpenMP development files.
static inline int kondate_omp_set_num_threads(int n) {
    void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (!set) return 0;
    set(n);
    return 1;
}

static inline int kondate_omp_get_max_threads(void) {
    int (*get)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    return get ? get() : 0;
}
