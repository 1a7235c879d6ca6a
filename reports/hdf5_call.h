#pragma once
// Checked HDF5 calls (internal to reports/). HDF5 reports failures through negative return
// values and an error stack that it prints to stderr by default; here a failure becomes a
// semskip::Error carrying the caller's context (which file, which object) and the messages of
// that stack, and nothing is printed.

#include <hdf5.h>

#include <string>

namespace semskip::report::detail {

// The messages of the current thread's HDF5 error stack, outermost first, joined by "; ";
// the stack is cleared.
std::string h5_error_stack();

[[noreturn]] void throw_h5_error(const std::string& context);

// Returns `result` when it is non-negative; otherwise throws semskip::Error
// "<context>: <HDF5 messages>".
template <typename T>
T h5_check(T result, const std::string& context) {
  if (result < 0) throw_h5_error(context);
  return result;
}

// Silences HDF5's automatic error printing for the current thread while it lives and restores
// the previous handler afterwards, so this library leaves the process's HDF5 settings as it
// found them. Every public entry point of reports/ that calls HDF5 holds one.
class QuietHdf5Errors {
 public:
  QuietHdf5Errors();
  ~QuietHdf5Errors();
  QuietHdf5Errors(const QuietHdf5Errors&) = delete;
  QuietHdf5Errors& operator=(const QuietHdf5Errors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
  bool saved_ = false;
};

// An owned HDF5 identifier, closed by its type's close function when it goes out of scope.
class H5Id {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Id() = default;
  H5Id(hid_t id, Closer close) : id_(id), close_(close) {}
  ~H5Id() { reset(); }
  H5Id(H5Id&& o) noexcept : id_(o.id_), close_(o.close_) { o.id_ = H5I_INVALID_HID; }
  H5Id& operator=(H5Id&& o) noexcept;
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  // Closes now; a close error is ignored (destructors must not throw). Callers that need to
  // know whether the close succeeded (the file, at commit) close it themselves via release().
  void reset();
  hid_t release() {
    hid_t id = id_;
    id_ = H5I_INVALID_HID;
    return id;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

// Wraps the result of an HDF5 create/open call: throws as h5_check does when it failed.
inline H5Id h5_own(hid_t id, H5Id::Closer close, const std::string& context) {
  return H5Id(h5_check(id, context), close);
}

// A variable-length UTF-8 string type, as h5py writes str and reads back as str.
H5Id vlen_utf8_type();

// True when `path` ("/a/b") names an existing link. Walks the components, since
// H5Lexists fails rather than answers when an intermediate group is missing.
bool h5_path_exists(hid_t file, const std::string& path, const std::string& context);

// "" when `s` is valid UTF-8 without NUL bytes (a C-string based HDF5 string would silently
// cut at a NUL), else what is wrong and where. Callers build their message only on failure.
std::string utf8_problem(const std::string& s);

}  // namespace semskip::report::detail
