// Makes token-dataset seeds small: `kiln prepare` stores /tokens in 256K-element chunks, so
// even a 30-token split is a 1 MB file (whole chunks are allocated), far too big for a fuzz
// corpus. This copies a dataset written by kiln into a new file with every 1-D dataset
// re-chunked to at most N elements, keeping types, values and every root attribute as they are,
// so the copy opens and verifies exactly like the original (scripts/fuzz.sh checks that).
//   rechunk_dataset IN.h5 OUT.h5 N
#include <hdf5.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "rechunk_dataset: %s\n", what.c_str());
  std::exit(1);
}

hid_t checked(hid_t id, const std::string& what) {
  if (id < 0) die(what);
  return id;
}

herr_t copy_attribute(hid_t source_object, const char* name, const H5A_info_t*, void* target_object) {
  const hid_t source = checked(H5Aopen(source_object, name, H5P_DEFAULT), name);
  const hid_t file_type = H5Aget_type(source);
  const hid_t memory_type = H5Tget_native_type(file_type, H5T_DIR_DEFAULT);
  const hid_t space = H5Aget_space(source);
  const auto points = static_cast<std::size_t>(H5Sget_simple_extent_npoints(space));
  std::vector<unsigned char> buffer(points * H5Tget_size(memory_type));
  if (H5Aread(source, memory_type, buffer.data()) < 0) die(std::string("reading attribute ") + name);
  const hid_t target = checked(
      H5Acreate2(*static_cast<hid_t*>(target_object), name, file_type, space, H5P_DEFAULT, H5P_DEFAULT), name);
  if (H5Awrite(target, memory_type, buffer.data()) < 0) die(std::string("writing attribute ") + name);
  if (H5Tis_variable_str(memory_type) > 0) H5Dvlen_reclaim(memory_type, space, H5P_DEFAULT, buffer.data());
  H5Aclose(target);
  H5Sclose(space);
  H5Tclose(memory_type);
  H5Tclose(file_type);
  H5Aclose(source);
  return 0;
}

void copy_rechunked(hid_t source_file, hid_t target_file, const char* name, hsize_t max_chunk) {
  const hid_t source = checked(H5Dopen2(source_file, name, H5P_DEFAULT), name);
  const hid_t file_type = H5Dget_type(source);
  const hid_t memory_type = H5Tget_native_type(file_type, H5T_DIR_DEFAULT);
  const hid_t source_space = H5Dget_space(source);
  if (H5Sget_simple_extent_ndims(source_space) != 1) die(std::string(name) + " is not 1-D");
  hsize_t length = 0;
  H5Sget_simple_extent_dims(source_space, &length, nullptr);
  std::vector<unsigned char> values(length * H5Tget_size(memory_type));
  if (length > 0 && H5Dread(source, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    die(std::string("reading ") + name);
  }
  const hsize_t unlimited = H5S_UNLIMITED;
  const hid_t target_space = H5Screate_simple(1, &length, &unlimited);
  const hid_t layout = H5Pcreate(H5P_DATASET_CREATE);
  const hsize_t chunk = std::max<hsize_t>(1, std::min(length, max_chunk));
  H5Pset_chunk(layout, 1, &chunk);
  const hid_t target = checked(
      H5Dcreate2(target_file, name, file_type, target_space, H5P_DEFAULT, layout, H5P_DEFAULT), name);
  if (length > 0 && H5Dwrite(target, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    die(std::string("writing ") + name);
  }
  H5Dclose(target);
  H5Pclose(layout);
  H5Sclose(target_space);
  H5Sclose(source_space);
  H5Tclose(memory_type);
  H5Tclose(file_type);
  H5Dclose(source);
}

herr_t copy_dataset_link(hid_t group, const char* name, const H5L_info_t*, void* context) {
  const auto* target_and_chunk = static_cast<const std::pair<hid_t, hsize_t>*>(context);
  copy_rechunked(group, target_and_chunk->first, name, target_and_chunk->second);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) die("usage: rechunk_dataset IN.h5 OUT.h5 MAX_CHUNK_ELEMENTS");
  const hsize_t max_chunk = std::strtoull(argv[3], nullptr, 10);
  const hid_t source = checked(H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT), argv[1]);
  hid_t target = checked(H5Fcreate(argv[2], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), argv[2]);
  H5Aiterate2(source, H5_INDEX_NAME, H5_ITER_INC, nullptr, copy_attribute, &target);
  std::pair<hid_t, hsize_t> context{target, max_chunk};
  H5Literate(source, H5_INDEX_NAME, H5_ITER_INC, nullptr, copy_dataset_link, &context);
  if (H5Fclose(target) < 0) die(std::string("closing ") + argv[2]);
  H5Fclose(source);
  return 0;
}
