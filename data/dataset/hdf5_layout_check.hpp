#pragma once
// A guard for one libhdf5 1.10.8 crash (Debian 12's library, the one kiln links).
//
// That library decodes a version 1 or 2 data layout message without checking its chunk
// dimensions and then divides by them while opening the dataset, so a damaged file with a zero
// there kills the process with SIGFPE inside H5Dopen2 (its version 3 decoder refuses a zero, so
// files any HDF5 1.8+ writes are not affected). kiln reads the dataset's object header itself
// before H5Dopen2 and refuses such a message; headers it cannot follow are left to HDF5's checks.
#include <hdf5.h>

namespace kiln::data::hdf5 {

// Throws kiln::Error naming the dataset when its object header holds a version 1 or 2 chunked
// layout message with a zero dimension. Call with library_mutex() held.
void refuse_zero_chunk_dimensions(hid_t file, const char* dataset_name);

}  // namespace kiln::data::hdf5
