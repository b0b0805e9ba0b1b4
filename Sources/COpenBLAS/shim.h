#ifndef FERRY_COPENBLAS_SHIM_H
#define FERRY_COPENBLAS_SHIM_H
#include <cblas.h>
#endif
