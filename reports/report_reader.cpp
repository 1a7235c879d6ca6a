#include "reports/report_reader.h"

#include <filesystem>
#include <functional>

#include <fmt/format.h>

#include "core/error.h"
#include "reports/hdf5_call.h"

namespace semskip::report {

using detail::H5Id;
using detail::h5_check;
using detail::h5_own;
using detail::QuietHdf5Errors;

namespace {

// The creation property list of a group or dataset, to learn whether it tracks creation order.
H5Id create_plist(hid_t obj, const std::string& ctx) {
  H5I_type_t t = H5Iget_type(obj);
  if (t == H5I_GROUP) return h5_own(H5Gget_create_plist(obj), H5Pclose, ctx);
  if (t == H5I_DATASET) return h5_own(H5Dget_create_plist(obj), H5Pclose, ctx);
  return H5Id();
}

H5_index_t link_index(hid_t group, const std::string& ctx) {
  unsigned flags = 0;
  H5Id plist = create_plist(group, ctx);
  if (plist.valid()) h5_check(H5Pget_link_creation_order(plist.get(), &flags), ctx);
  return (flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
}

H5_index_t attr_index(hid_t obj, const std::string& ctx) {
  unsigned flags = 0;
  H5Id plist = create_plist(obj, ctx);
  if (plist.valid()) h5_check(H5Pget_attr_creation_order(plist.get(), &flags), ctx);
  return (flags & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
}

// A memory string type that HDF5 can convert the file's string type `ftype` into: the same
// kind (variable or fixed length) and character set.
H5Id memory_string_type(hid_t ftype, const std::string& ctx) {
  if (h5_check(H5Tis_variable_str(ftype), ctx) > 0) {
    H5Id t = h5_own(H5Tcopy(H5T_C_S1), H5Tclose, ctx);
    h5_check(H5Tset_size(t.get(), H5T_VARIABLE), ctx);
    h5_check(H5Tset_cset(t.get(), h5_check(H5Tget_cset(ftype), ctx)), ctx);
    return t;
  }
  return h5_own(H5Tcopy(ftype), H5Tclose, ctx);
}

// A fixed-length string field: up to the first NUL, without space padding.
std::string fixed_string(const char* p, size_t size, hid_t ftype) {
  size_t n = 0;
  while (n < size && p[n] != '\0') ++n;
  if (H5Tget_strpad(ftype) == H5T_STR_SPACEPAD) {
    while (n > 0 && p[n - 1] == ' ') --n;
  }
  return std::string(p, n);
}

// Takes ownership of strings HDF5 allocated for variable-length reads.
std::string take_vlen(char* p) {
  if (!p) return {};
  std::string s(p);
  H5free_memory(p);
  return s;
}

AttrValue read_attr(hid_t attr, const std::string& ctx) {
  H5Id space = h5_own(H5Aget_space(attr), H5Sclose, ctx);
  hssize_t n = h5_check(H5Sget_simple_extent_npoints(space.get()), ctx);
  SEMSKIP_THROW_IF_NOT_MSG(n == 1, "{}: holds {} values; only single values are supported", ctx, n);
  H5Id ftype = h5_own(H5Aget_type(attr), H5Tclose, ctx);
  switch (H5Tget_class(ftype.get())) {
    case H5T_INTEGER: {
      int64_t v = 0;
      h5_check(H5Aread(attr, H5T_NATIVE_INT64, &v), ctx);
      return v;
    }
    case H5T_FLOAT: {
      double v = 0;
      h5_check(H5Aread(attr, H5T_NATIVE_DOUBLE, &v), ctx);
      return v;
    }
    case H5T_STRING: {
      H5Id mtype = memory_string_type(ftype.get(), ctx);
      if (h5_check(H5Tis_variable_str(ftype.get()), ctx) > 0) {
        char* p = nullptr;
        h5_check(H5Aread(attr, mtype.get(), &p), ctx);
        return take_vlen(p);
      }
      std::vector<char> buf(H5Tget_size(ftype.get()));
      h5_check(H5Aread(attr, mtype.get(), buf.data()), ctx);
      return fixed_string(buf.data(), buf.size(), ftype.get());
    }
    default:
      SEMSKIP_THROW_MSG("{}: unsupported type (only integer, float and string attributes)", ctx);
  }
}

struct AttrNames {
  std::vector<std::string> names;
};

herr_t collect_attr_name(hid_t, const char* name, const H5A_info_t*, void* data) {
  static_cast<AttrNames*>(data)->names.emplace_back(name);
  return 0;
}

// Reads member `name` of every element of a compound dataset through a one-member memory
// type; HDF5 matches members by name and converts the values.
template <typename T>
std::vector<T> read_member(hid_t dset, const char* name, hid_t mtype, size_t n, const std::string& ctx) {
  std::vector<T> out(n);
  H5Id one = h5_own(H5Tcreate(H5T_COMPOUND, sizeof(T)), H5Tclose, ctx);
  h5_check(H5Tinsert(one.get(), name, 0, mtype), ctx);
  if (n > 0) h5_check(H5Dread(dset, one.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()), ctx);
  return out;
}

std::vector<std::string> read_string_member(hid_t dset, const char* name, hid_t ftype, size_t n,
                                            const std::string& ctx) {
  H5Id mtype = memory_string_type(ftype, ctx);
  std::vector<std::string> out;
  out.reserve(n);
  if (h5_check(H5Tis_variable_str(ftype), ctx) > 0) {
    std::vector<char*> ptrs = read_member<char*>(dset, name, mtype.get(), n, ctx);
    for (char* p : ptrs) out.push_back(take_vlen(p));
    return out;
  }
  const size_t size = H5Tget_size(ftype);
  std::vector<char> buf(n * size);
  H5Id one = h5_own(H5Tcreate(H5T_COMPOUND, size), H5Tclose, ctx);
  h5_check(H5Tinsert(one.get(), name, 0, mtype.get()), ctx);
  if (n > 0) h5_check(H5Dread(dset, one.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), ctx);
  for (size_t r = 0; r < n; ++r) out.push_back(fixed_string(&buf[r * size], size, ftype));
  return out;
}

std::vector<int64_t> dataset_shape(hid_t dset, const std::string& ctx) {
  H5Id space = h5_own(H5Dget_space(dset), H5Sclose, ctx);
  int rank = h5_check(H5Sget_simple_extent_ndims(space.get()), ctx);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) h5_check(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr), ctx);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

}  // namespace

struct ReportReader::Impl {
  H5Id file;

  std::string where(const std::string& path, const std::string& what) const {
    return fmt::format("report '{}': {}", path, what);
  }
};

ReportReader::ReportReader(const std::string& path) : path_(path), impl_(std::make_unique<Impl>()) {
  QuietHdf5Errors quiet;
  std::error_code ec;
  SEMSKIP_THROW_IF_NOT_MSG(std::filesystem::exists(path, ec), "no such file: '{}'", path);
  SEMSKIP_THROW_IF_NOT_MSG(std::filesystem::is_regular_file(path, ec), "'{}' is not a regular file", path);
#if H5_VERSION_GE(1, 12, 0)
  htri_t is_hdf5 = H5Fis_accessible(path.c_str(), H5P_DEFAULT);
#else
  htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
#endif
  if (is_hdf5 < 0) detail::throw_h5_error(fmt::format("cannot read '{}'", path));
  SEMSKIP_THROW_IF_NOT_MSG(is_hdf5 > 0, "'{}' is not an HDF5 file", path);
  impl_->file = h5_own(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose,
                       fmt::format("cannot open report '{}'", path));
}

ReportReader::~ReportReader() {
  QuietHdf5Errors quiet;
  impl_->file.reset();
}

std::vector<ObjectInfo> ReportReader::list() const {
  QuietHdf5Errors quiet;
  const std::string ctx = impl_->where(path_, "listing objects");
  std::vector<ObjectInfo> out;
  std::function<void(const std::string&)> visit = [&](const std::string& group_path) {
    H5Id group = h5_own(H5Gopen2(impl_->file.get(), group_path.c_str(), H5P_DEFAULT), H5Gclose, ctx);
    H5G_info_t info;
    h5_check(H5Gget_info(group.get(), &info), ctx);
    const H5_index_t index = link_index(group.get(), ctx);
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      ssize_t len = h5_check(H5Lget_name_by_idx(group.get(), ".", index, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT), ctx);
      std::string name(static_cast<size_t>(len) + 1, '\0');
      h5_check(H5Lget_name_by_idx(group.get(), ".", index, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT), ctx);
      name.resize(static_cast<size_t>(len));
      const std::string child = (group_path == "/" ? "" : group_path) + "/" + name;
      H5Id obj = h5_own(H5Oopen(impl_->file.get(), child.c_str(), H5P_DEFAULT), H5Oclose, ctx);
      const H5I_type_t type = H5Iget_type(obj.get());
      if (type == H5I_GROUP) {
        out.push_back(ObjectInfo{child, ObjectKind::group, {}});
        visit(child);
      } else if (type == H5I_DATASET) {
        H5Id ftype = h5_own(H5Dget_type(obj.get()), H5Tclose, ctx);
        const bool compound = H5Tget_class(ftype.get()) == H5T_COMPOUND;
        out.push_back(ObjectInfo{child, compound ? ObjectKind::table : ObjectKind::array,
                                 dataset_shape(obj.get(), ctx)});
      }
    }
  };
  visit("/");
  return out;
}

bool ReportReader::has(const std::string& object_path) const {
  QuietHdf5Errors quiet;
  if (object_path == "/") return true;
  return detail::h5_path_exists(impl_->file.get(), object_path, impl_->where(path_, object_path));
}

std::vector<std::pair<std::string, AttrValue>> ReportReader::attrs(const std::string& object_path) const {
  QuietHdf5Errors quiet;
  const std::string ctx = impl_->where(path_, fmt::format("attributes of '{}'", object_path));
  SEMSKIP_THROW_IF_NOT_MSG(has(object_path), "{}: no such object", ctx);
  H5Id obj = h5_own(H5Oopen(impl_->file.get(), object_path.c_str(), H5P_DEFAULT), H5Oclose, ctx);
  AttrNames names;
  hsize_t idx = 0;
  h5_check(H5Aiterate2(obj.get(), attr_index(obj.get(), ctx), H5_ITER_INC, &idx, collect_attr_name, &names), ctx);
  std::vector<std::pair<std::string, AttrValue>> out;
  for (const std::string& name : names.names) {
    const std::string actx = impl_->where(path_, fmt::format("attribute '{}' of '{}'", name, object_path));
    H5Id attr = h5_own(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose, actx);
    out.emplace_back(name, read_attr(attr.get(), actx));
  }
  return out;
}

bool ReportReader::has_attr(const std::string& name, const std::string& object_path) const {
  QuietHdf5Errors quiet;
  const std::string ctx = impl_->where(path_, fmt::format("attribute '{}' of '{}'", name, object_path));
  if (!has(object_path)) return false;
  H5Id obj = h5_own(H5Oopen(impl_->file.get(), object_path.c_str(), H5P_DEFAULT), H5Oclose, ctx);
  return h5_check(H5Aexists(obj.get(), name.c_str()), ctx) > 0;
}

AttrValue ReportReader::attr(const std::string& name, const std::string& object_path) const {
  QuietHdf5Errors quiet;
  const std::string ctx = impl_->where(path_, fmt::format("attribute '{}' of '{}'", name, object_path));
  SEMSKIP_THROW_IF_NOT_MSG(has_attr(name, object_path), "{}: no such attribute", ctx);
  H5Id obj = h5_own(H5Oopen(impl_->file.get(), object_path.c_str(), H5P_DEFAULT), H5Oclose, ctx);
  H5Id attr = h5_own(H5Aopen(obj.get(), name.c_str(), H5P_DEFAULT), H5Aclose, ctx);
  return read_attr(attr.get(), ctx);
}

Table ReportReader::read_table(const std::string& dataset_path) const {
  QuietHdf5Errors quiet;
  const std::string ctx = impl_->where(path_, fmt::format("table '{}'", dataset_path));
  SEMSKIP_THROW_IF_NOT_MSG(has(dataset_path), "{}: no such table", ctx);
  H5Id dset = h5_own(H5Dopen2(impl_->file.get(), dataset_path.c_str(), H5P_DEFAULT), H5Dclose, ctx);
  H5Id ftype = h5_own(H5Dget_type(dset.get()), H5Tclose, ctx);
  SEMSKIP_THROW_IF_NOT_MSG(H5Tget_class(ftype.get()) == H5T_COMPOUND, "{}: not a table (compound dataset)", ctx);
  std::vector<int64_t> shape = dataset_shape(dset.get(), ctx);
  SEMSKIP_THROW_IF_NOT_MSG(shape.size() == 1, "{}: a table is one-dimensional, this dataset has {} dimensions",
                           ctx, shape.size());
  const size_t n = static_cast<size_t>(shape[0]);
  Table table;
  const int n_members = h5_check(H5Tget_nmembers(ftype.get()), ctx);
  for (int j = 0; j < n_members; ++j) {
    char* raw_name = H5Tget_member_name(ftype.get(), static_cast<unsigned>(j));
    if (!raw_name) detail::throw_h5_error(ctx);
    const std::string name = take_vlen(raw_name);
    const std::string cctx = fmt::format("{}: column '{}'", ctx, name);
    H5Id mftype = h5_own(H5Tget_member_type(ftype.get(), static_cast<unsigned>(j)), H5Tclose, cctx);
    switch (H5Tget_class(mftype.get())) {
      case H5T_INTEGER:
        table.add(name, read_member<int64_t>(dset.get(), name.c_str(), H5T_NATIVE_INT64, n, cctx));
        break;
      case H5T_FLOAT:
        table.add(name, read_member<double>(dset.get(), name.c_str(), H5T_NATIVE_DOUBLE, n, cctx));
        break;
      case H5T_STRING:
        table.add(name, read_string_member(dset.get(), name.c_str(), mftype.get(), n, cctx));
        break;
      default:
        SEMSKIP_THROW_MSG("{}: unsupported type (only integer, float and string columns)", cctx);
    }
  }
  return table;
}

Array ReportReader::read_array(const std::string& dataset_path) const {
  QuietHdf5Errors quiet;
  const std::string ctx = impl_->where(path_, fmt::format("array '{}'", dataset_path));
  SEMSKIP_THROW_IF_NOT_MSG(has(dataset_path), "{}: no such array", ctx);
  H5Id dset = h5_own(H5Dopen2(impl_->file.get(), dataset_path.c_str(), H5P_DEFAULT), H5Dclose, ctx);
  H5Id ftype = h5_own(H5Dget_type(dset.get()), H5Tclose, ctx);
  const H5T_class_t cls = H5Tget_class(ftype.get());
  SEMSKIP_THROW_IF_NOT_MSG(cls == H5T_FLOAT || cls == H5T_INTEGER, "{}: not a numeric array", ctx);
  Array out;
  out.shape = dataset_shape(dset.get(), ctx);
  size_t n = 1;
  for (int64_t d : out.shape) n *= static_cast<size_t>(d);
  out.values.resize(n);
  if (n > 0) {
    h5_check(H5Dread(dset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.values.data()), ctx);
  }
  return out;
}

std::string attr_to_string(const AttrValue& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return fmt::format("{}", *i);
  if (const auto* d = std::get_if<double>(&value)) return fmt::format("{}", *d);
  return std::get<std::string>(value);
}

}  // namespace semskip::report
