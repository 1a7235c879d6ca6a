#include "reports/report_writer.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <cstring>
#include <limits>
#include <type_traits>
#include <variant>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/strings.h"
#include "reports/hdf5_call.h"

namespace semskip::report {

using detail::H5Id;
using detail::h5_check;
using detail::h5_own;
using detail::QuietHdf5Errors;

namespace {

// Groups, the root and datasets remember the order in which links and attributes were
// created, so readers (`semskip report`, h5py) list them in the order the run wrote them.
constexpr unsigned kCreationOrder = H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED;

// Dataset paths are absolute, with non-empty components: "/summary", "/index/build".
std::vector<std::string> path_components(const std::string& path, const std::string& what) {
  SEMSKIP_THROW_IF_NOT_MSG(starts_with(path, "/") && path.size() > 1,
                           "{} '{}': expected an absolute HDF5 path such as '/summary'", what, path);
  std::vector<std::string> parts = split(path.substr(1), '/');
  for (const std::string& p : parts) {
    SEMSKIP_THROW_IF_NOT_MSG(!p.empty() && p != "." && p != "..",
                             "{} '{}': empty, '.' or '..' path component", what, path);
  }
  return parts;
}

}  // namespace

void check_report_path(const std::string& path, bool force) {
  namespace fs = std::filesystem;
  SEMSKIP_THROW_IF_NOT_MSG(!path.empty(), "report path is empty");
  std::error_code ec;
  SEMSKIP_THROW_IF_NOT_MSG(!fs::is_directory(path, ec), "report '{}': is a directory, not a file name", path);
  fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) parent = ".";
  SEMSKIP_THROW_IF_NOT_MSG(fs::exists(parent, ec), "report '{}': folder '{}' does not exist", path,
                           parent.string());
  SEMSKIP_THROW_IF_NOT_MSG(fs::is_directory(parent, ec), "report '{}': '{}' is not a folder", path,
                           parent.string());
  // Permission bits say little (root ignores them, ACLs and read-only mounts add to them):
  // writing a file is the test.
  std::string probe = (parent / ".semskip-write-probe-XXXXXX").string();
  const int fd = ::mkstemp(probe.data());
  if (fd < 0) {
    const int err = errno;
    SEMSKIP_THROW_MSG("report '{}': cannot write in folder '{}': {}", path, parent.string(), std::strerror(err));
  }
  ::close(fd);
  std::remove(probe.c_str());
  SEMSKIP_THROW_IF_NOT_MSG(force || !fs::exists(path, ec),
                           "report '{}': a file of that name exists; pass --force to overwrite it or choose "
                           "another --report",
                           path);
}

struct ReportWriter::Impl {
  std::string tmp_path;
  H5Id file;
  bool closed = false;   // commit() closed the file: no more writes
  bool renamed = false;  // commit() completed: the temporary file is now the report

  std::string where(const std::string& object) const {
    return fmt::format("report '{}': {}", tmp_path, object);
  }

  // Creates the missing groups above `dataset_path` and refuses a path already taken.
  void prepare_dataset_path(const std::string& dataset_path, const std::string& what) {
    std::vector<std::string> parts = path_components(dataset_path, what);
    const std::string ctx = where(fmt::format("{} '{}'", what, dataset_path));
    SEMSKIP_THROW_IF_NOT_MSG(!detail::h5_path_exists(file.get(), dataset_path, ctx),
                             "{}: already written", ctx);
    H5Id gcpl = h5_own(H5Pcreate(H5P_GROUP_CREATE), H5Pclose, ctx);
    h5_check(H5Pset_link_creation_order(gcpl.get(), kCreationOrder), ctx);
    h5_check(H5Pset_attr_creation_order(gcpl.get(), kCreationOrder), ctx);
    std::string prefix;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      prefix += "/" + parts[i];
      if (detail::h5_path_exists(file.get(), prefix, ctx)) {
        H5Id obj = h5_own(H5Oopen(file.get(), prefix.c_str(), H5P_DEFAULT), H5Oclose, ctx);
        SEMSKIP_THROW_IF_NOT_MSG(H5Iget_type(obj.get()) == H5I_GROUP, "{}: '{}' is a dataset, not a group",
                                 ctx, prefix);
        continue;
      }
      h5_own(H5Gcreate2(file.get(), prefix.c_str(), H5P_DEFAULT, gcpl.get(), H5P_DEFAULT), H5Gclose, ctx);
    }
  }

  // Chunked along the first dimension (about kChunkBytes per chunk, the other dimensions
  // whole) with shuffle + deflate; an empty dataset stays contiguous (no chunk can be empty).
  H5Id dataset_create_plist(const std::string& ctx, const std::vector<hsize_t>& dims, size_t element_bytes) {
    H5Id dcpl = h5_own(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, ctx);
    h5_check(H5Pset_attr_creation_order(dcpl.get(), kCreationOrder), ctx);
    const bool empty = std::any_of(dims.begin(), dims.end(), [](hsize_t d) { return d == 0; });
    if (empty) return dcpl;
    size_t row_bytes = element_bytes;
    for (size_t i = 1; i < dims.size(); ++i) row_bytes *= static_cast<size_t>(dims[i]);
    std::vector<hsize_t> chunk = dims;
    chunk[0] = std::clamp<hsize_t>(kChunkBytes / std::max<size_t>(row_bytes, 1), 1, dims[0]);
    h5_check(H5Pset_chunk(dcpl.get(), static_cast<int>(chunk.size()), chunk.data()), ctx);
    h5_check(H5Pset_shuffle(dcpl.get()), ctx);
    h5_check(H5Pset_deflate(dcpl.get(), kDeflateLevel), ctx);
    return dcpl;
  }

  void check_open(const char* op) const {
    SEMSKIP_THROW_IF_NOT_MSG(!closed, "report '{}': {} after commit()", tmp_path, op);
  }
};

ReportWriter::ReportWriter(const std::string& path) : path_(path), impl_(std::make_unique<Impl>()) {
  SEMSKIP_THROW_IF_NOT_MSG(!path.empty(), "report path is empty");
  QuietHdf5Errors quiet;
  impl_->tmp_path = path + ".tmp";
  const std::string ctx = fmt::format("cannot create report '{}'", impl_->tmp_path);
  H5Id fcpl = h5_own(H5Pcreate(H5P_FILE_CREATE), H5Pclose, ctx);
  h5_check(H5Pset_link_creation_order(fcpl.get(), kCreationOrder), ctx);
  h5_check(H5Pset_attr_creation_order(fcpl.get(), kCreationOrder), ctx);
  H5Id fapl = h5_own(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, ctx);
  // Closing the file closes every object still open in it, so commit() renames a complete file.
  h5_check(H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG), ctx);
  impl_->file = h5_own(H5Fcreate(impl_->tmp_path.c_str(), H5F_ACC_TRUNC, fcpl.get(), fapl.get()),
                       H5Fclose, ctx);
  set_attr(kStatusAttr, std::string(kStatusIncomplete));
}

ReportWriter::~ReportWriter() {
  if (!impl_ || impl_->renamed) return;
  QuietHdf5Errors quiet;
  impl_->file.reset();
  std::remove(impl_->tmp_path.c_str());
}

void ReportWriter::set_attr(const std::string& name, const AttrValue& value, const std::string& object_path) {
  impl_->check_open("set_attr");
  QuietHdf5Errors quiet;
  const std::string ctx = impl_->where(fmt::format("attribute '{}' on '{}'", name, object_path));
  SEMSKIP_THROW_IF_NOT_MSG(!name.empty(), "{}: empty attribute name", ctx);
  SEMSKIP_THROW_IF_NOT_MSG(object_path == "/" || detail::h5_path_exists(impl_->file.get(), object_path, ctx),
                           "{}: no object '{}' in the report", ctx, object_path);
  H5Id obj = h5_own(H5Oopen(impl_->file.get(), object_path.c_str(), H5P_DEFAULT), H5Oclose, ctx);
  // Setting an attribute twice replaces it, as assignment in h5py does.
  if (h5_check(H5Aexists(obj.get(), name.c_str()), ctx) > 0) {
    h5_check(H5Adelete(obj.get(), name.c_str()), ctx);
  }
  H5Id space = h5_own(H5Screate(H5S_SCALAR), H5Sclose, ctx);
  if (const auto* i = std::get_if<int64_t>(&value)) {
    H5Id attr = h5_own(H5Acreate2(obj.get(), name.c_str(), H5T_NATIVE_INT64, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       H5Aclose, ctx);
    h5_check(H5Awrite(attr.get(), H5T_NATIVE_INT64, i), ctx);
  } else if (const auto* d = std::get_if<double>(&value)) {
    H5Id attr = h5_own(H5Acreate2(obj.get(), name.c_str(), H5T_NATIVE_DOUBLE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       H5Aclose, ctx);
    h5_check(H5Awrite(attr.get(), H5T_NATIVE_DOUBLE, d), ctx);
  } else {
    const std::string& s = std::get<std::string>(value);
    const std::string problem = detail::utf8_problem(s);
    SEMSKIP_THROW_IF_NOT_MSG(problem.empty(), "{}: {}", ctx, problem);
    H5Id type = detail::vlen_utf8_type();
    H5Id attr = h5_own(H5Acreate2(obj.get(), name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                       H5Aclose, ctx);
    const char* ptr = s.c_str();
    h5_check(H5Awrite(attr.get(), type.get(), &ptr), ctx);
  }
}

void ReportWriter::check_fits_int64(const std::string& name, uint64_t value) const {
  SEMSKIP_THROW_IF_NOT_MSG(value <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
                           "report '{}': attribute '{}': {} does not fit in int64", impl_->tmp_path, name, value);
}

void ReportWriter::write_table(const std::string& dataset_path, const Table& table) {
  impl_->check_open("write_table");
  QuietHdf5Errors quiet;
  const std::string ctx = impl_->where(fmt::format("table '{}'", dataset_path));
  SEMSKIP_THROW_IF_NOT_MSG(!table.columns().empty(), "{}: a table needs at least one column", ctx);
  size_t n_rows = 0;
  try {
    n_rows = table.n_rows();
  } catch (const Error& e) {
    SEMSKIP_THROW_MSG("{}: {}", ctx, e.what());
  }

  // One row in memory: the columns' values side by side, strings as pointers to the table's
  // own characters (HDF5 copies them into the file's heap during H5Dwrite).
  std::vector<size_t> offsets;
  size_t row_size = 0;
  for (const Column& c : table.columns()) {
    offsets.push_back(row_size);
    row_size += std::holds_alternative<std::vector<std::string>>(c.data) ? sizeof(const char*) : 8;
  }
  H5Id row_type = h5_own(H5Tcreate(H5T_COMPOUND, row_size), H5Tclose, ctx);
  H5Id str_type = detail::vlen_utf8_type();
  for (size_t j = 0; j < table.columns().size(); ++j) {
    const Column& c = table.columns()[j];
    hid_t member = std::visit(
        [&](const auto& v) -> hid_t {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::vector<int64_t>>) return H5T_NATIVE_INT64;
          if constexpr (std::is_same_v<V, std::vector<double>>) return H5T_NATIVE_DOUBLE;
          return str_type.get();
        },
        c.data);
    h5_check(H5Tinsert(row_type.get(), c.name.c_str(), offsets[j], member),
             fmt::format("{}: column '{}'", ctx, c.name));
  }

  std::vector<unsigned char> rows(n_rows * row_size);
  for (size_t j = 0; j < table.columns().size(); ++j) {
    const Column& c = table.columns()[j];
    if (const auto* ints = std::get_if<std::vector<int64_t>>(&c.data)) {
      for (size_t r = 0; r < n_rows; ++r) std::memcpy(&rows[r * row_size + offsets[j]], &(*ints)[r], 8);
    } else if (const auto* doubles = std::get_if<std::vector<double>>(&c.data)) {
      for (size_t r = 0; r < n_rows; ++r) std::memcpy(&rows[r * row_size + offsets[j]], &(*doubles)[r], 8);
    } else {
      const auto& s = std::get<std::vector<std::string>>(c.data);
      for (size_t r = 0; r < n_rows; ++r) {
        const std::string problem = detail::utf8_problem(s[r]);
        SEMSKIP_THROW_IF_NOT_MSG(problem.empty(), "{}: column '{}' row {}: {}", ctx, c.name, r, problem);
        const char* ptr = s[r].c_str();
        std::memcpy(&rows[r * row_size + offsets[j]], &ptr, sizeof(ptr));
      }
    }
  }

  impl_->prepare_dataset_path(dataset_path, "table");
  hsize_t dims[1] = {static_cast<hsize_t>(n_rows)};
  H5Id space = h5_own(H5Screate_simple(1, dims, nullptr), H5Sclose, ctx);
  H5Id dcpl = impl_->dataset_create_plist(ctx, {dims[0]}, row_size);
  H5Id dset = h5_own(H5Dcreate2(impl_->file.get(), dataset_path.c_str(), row_type.get(), space.get(),
                                H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                     H5Dclose, ctx);
  if (n_rows > 0) {
    h5_check(H5Dwrite(dset.get(), row_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rows.data()), ctx);
  }
}

void ReportWriter::write_array(const std::string& dataset_path, const std::vector<double>& values,
                               const std::vector<int64_t>& shape) {
  impl_->check_open("write_array");
  QuietHdf5Errors quiet;
  const std::string ctx = impl_->where(fmt::format("array '{}'", dataset_path));
  SEMSKIP_THROW_IF_NOT_MSG(!shape.empty() && shape.size() <= H5S_MAX_RANK,
                           "{}: shape must have 1 to {} dimensions, got {}", ctx, H5S_MAX_RANK, shape.size());
  std::vector<hsize_t> dims;
  size_t n = 1;
  for (int64_t d : shape) {
    SEMSKIP_THROW_IF_NOT_MSG(d >= 0, "{}: negative dimension {} in the shape", ctx, d);
    dims.push_back(static_cast<hsize_t>(d));
    n *= static_cast<size_t>(d);
  }
  SEMSKIP_THROW_IF_NOT_MSG(n == values.size(), "{}: shape [{}] holds {} values, got {}", ctx,
                           fmt::join(shape, ", "), n, values.size());
  impl_->prepare_dataset_path(dataset_path, "array");
  H5Id space = h5_own(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose, ctx);
  H5Id dcpl = impl_->dataset_create_plist(ctx, dims, sizeof(double));
  H5Id dset = h5_own(H5Dcreate2(impl_->file.get(), dataset_path.c_str(), H5T_NATIVE_DOUBLE, space.get(),
                                H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
                     H5Dclose, ctx);
  if (n > 0) h5_check(H5Dwrite(dset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), ctx);
}

void ReportWriter::flush() {
  impl_->check_open("flush");
  QuietHdf5Errors quiet;
  h5_check(H5Fflush(impl_->file.get(), H5F_SCOPE_GLOBAL), impl_->where("flushing"));
}

void ReportWriter::commit(const std::string& status) {
  impl_->check_open("commit");
  SEMSKIP_ASSERT(status == kStatusComplete || status == kStatusPartial);
  // The last attribute written: a file that has it was written to the end.
  set_attr(kStatusAttr, status);
  QuietHdf5Errors quiet;
  const std::string ctx = impl_->where("closing");
  h5_check(H5Fflush(impl_->file.get(), H5F_SCOPE_GLOBAL), ctx);
  impl_->closed = true;
  h5_check(H5Fclose(impl_->file.release()), ctx);
  // rename() replaces an older report of the same name in one step: readers see the old
  // complete file or the new complete file, never a mix.
  if (std::rename(impl_->tmp_path.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    SEMSKIP_THROW_MSG("report '{}': cannot rename '{}' to it: {}", path_, impl_->tmp_path, std::strerror(err));
  }
  impl_->renamed = true;
}

}  // namespace semskip::report
