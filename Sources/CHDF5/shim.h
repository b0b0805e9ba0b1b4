#ifndef FERRY_CHDF5_SHIM_H
#define FERRY_CHDF5_SHIM_H
#include <hdf5.h>

/* HDF5's type and flag constants are macros over globals (H5OPEN H5T_NATIVE_FLOAT_g), which
   Swift cannot import; these inline functions give Swift a callable name for each. */
static inline hid_t ferry_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t ferry_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t ferry_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t ferry_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t ferry_H5T_C_S1(void) { return H5T_C_S1; }
static inline hid_t ferry_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t ferry_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline unsigned ferry_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned ferry_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline size_t ferry_H5T_VARIABLE(void) { return H5T_VARIABLE; }
static inline hid_t ferry_H5S_ALL(void) { return H5S_ALL; }
static inline unsigned ferry_H5O_INFO_BASIC(void) { return H5O_INFO_BASIC; }

static inline hid_t ferry_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }
static inline hid_t ferry_H5T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }

/* Error stack: H5E_DEFAULT names the calling thread's stack. */
static inline hid_t ferry_H5E_DEFAULT(void) { return H5E_DEFAULT; }
/* Turns off libhdf5's automatic printing of error stacks for the calling thread. */
static inline herr_t ferry_H5E_silence(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
/* Frees the strings of a variable-length read (H5Treclaim from 1.12 on, H5Dvlen_reclaim before). */
static inline herr_t ferry_reclaim_vlen(hid_t type_id, hid_t space_id, void *buf) {
#if H5_VERSION_GE(1, 12, 0)
    return H5Treclaim(type_id, space_id, H5P_DEFAULT, buf);
#else
    return H5Dvlen_reclaim(type_id, space_id, H5P_DEFAULT, buf);
#endif
}
#endif
