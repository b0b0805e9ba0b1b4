#ifndef FERRY_CHDF5_SHIM_H
#define FERRY_CHDF5_SHIM_H
#include <hdf5.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
static inline hid_t ferry_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
/* Keeps libhdf5's metadata cache (object headers, heaps and B-tree nodes of the objects read) at
   `bytes` or less on a file access property list. Its default (2 MB, growing to 32 MB) fills with
   every layer's headers as a Keras file is read once through, in small blocks among the weights. */
static inline herr_t ferry_limit_metadata_cache(hid_t fapl, size_t bytes) {
    H5AC_cache_config_t config;
    memset(&config, 0, sizeof config);
    config.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    if (H5Pget_mdc_config(fapl, &config) < 0) return -1;
    config.set_initial_size = 1;
    config.initial_size = bytes;
    config.min_size = bytes / 2;
    config.max_size = bytes;
    return H5Pset_mdc_config(fapl, &config);
}
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
/* The descriptors of a variable-length string attribute, read without following them.
   libhdf5 converts each element by allocating (and zeroing) as many bytes as the element's
   length field in the file says before it reads the string from the global heap, so a damaged
   length makes an 18 KB file allocate 256 MiB or 4 GiB. To see the lengths first, the attribute
   is read into an opaque type as large as one element's descriptor in the file (4-byte length,
   heap address, 4-byte index), through a soft conversion registered for that opaque type only
   that leaves the descriptors as they are. */
#define FERRY_VLEN_DESCRIPTOR_TAG "ferry: variable-length descriptors as stored"
static inline herr_t ferry_keep_vlen_descriptors(hid_t src, hid_t dst, H5T_cdata_t *cdata, size_t nelmts,
                                          size_t buf_stride, size_t bkg_stride, void *buf, void *bkg,
                                          hid_t plist) {
    (void)nelmts; (void)buf_stride; (void)bkg_stride; (void)buf; (void)bkg; (void)plist;
    if (cdata->command == H5T_CONV_INIT) {
        char *tag = H5Tget_tag(dst);
        int ours = tag != NULL && strcmp(tag, FERRY_VLEN_DESCRIPTOR_TAG) == 0;
        if (tag != NULL) H5free_memory(tag);
        if (!ours || H5Tget_size(src) != H5Tget_size(dst)) return -1;
        cdata->need_bkg = H5T_BKG_NO;
    }
    return 0;  /* H5T_CONV_CONV: the bytes in buf are already the descriptors; H5T_CONV_FREE: nothing held */
}

/* The stored descriptor of each of the attribute's count elements: its length, the file address
   of its global heap collection and its index there; and the file's length-field size and base
   address (its user block). -1 when they cannot be read. */
static inline herr_t ferry_vlen_attribute_descriptors(hid_t attr, size_t count, uint64_t *lengths,
                                                      uint64_t *collections, uint32_t *indices,
                                                      size_t *file_length_size, uint64_t *base_address) {
    static int registered = 0;
    herr_t status = -1;
    hid_t file = -1, fcpl = -1, descriptor = -1, file_type = -1;
    size_t address_size = 0, length_size = 0;
    unsigned char *raw = NULL;
    if ((file = H5Iget_file_id(attr)) < 0 || (fcpl = H5Fget_create_plist(file)) < 0
        || H5Pget_sizes(fcpl, &address_size, &length_size) < 0 || address_size > 8) goto done;
    hsize_t user_block = 0;
    if (H5Pget_userblock(fcpl, &user_block) < 0) goto done;
    *file_length_size = length_size;
    *base_address = user_block;
    size_t size = 4 + address_size + 4;
    if ((file_type = H5Aget_type(attr)) < 0 || (descriptor = H5Tcreate(H5T_OPAQUE, size)) < 0
        || H5Tset_tag(descriptor, FERRY_VLEN_DESCRIPTOR_TAG) < 0) goto done;
    if (!registered) {
        if (H5Tregister(H5T_PERS_SOFT, "ferry_keep_vlen_descriptors", file_type, descriptor,
                        ferry_keep_vlen_descriptors) < 0) goto done;
        registered = 1;
    }
    if ((raw = malloc(count * size + 1)) == NULL || H5Aread(attr, descriptor, raw) < 0) goto done;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *d = raw + i * size;  /* the length is stored little-endian */
        lengths[i] = (uint64_t)d[0] | (uint64_t)d[1] << 8 | (uint64_t)d[2] << 16 | (uint64_t)d[3] << 24;
        collections[i] = 0;
        for (size_t b = 0; b < address_size; b++) collections[i] |= (uint64_t)d[4 + b] << (8 * b);
        const unsigned char *x = d + 4 + address_size;
        indices[i] = (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
    }
    status = 0;
done:
    free(raw);
    if (descriptor >= 0) H5Tclose(descriptor);
    if (file_type >= 0) H5Tclose(file_type);
    if (fcpl >= 0) H5Pclose(fcpl);
    if (file >= 0) H5Fclose(file);
    return status;
}
#endif
