#include "image/tar_writer.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/file_util.h"

namespace berth {

Hasher::Hasher(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, md, nullptr); }
Hasher::~Hasher() { EVP_MD_CTX_free(ctx_); }
void Hasher::Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
std::string Hasher::HexDigest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  Hasher h;
  h.Update(data.data(), data.size());
  return h.HexDigest();
}

Result<std::unique_ptr<FileSink>> FileSink::Open(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "wbx");
  if (f == nullptr) return ErrnoStatus(errno, path + ": cannot be written");
  return std::unique_ptr<FileSink>(new FileSink(path, f));
}

FileSink::~FileSink() {
  if (file_ != nullptr) std::fclose(file_);
}

bool FileSink::Write(const void* data, size_t n) {
  if (file_ == nullptr) return false;
  if (std::fwrite(data, 1, n, file_) != n) {
    error_ = path_ + ": write failed: " + std::strerror(errno);
    return false;
  }
  hash_.Update(data, n);
  bytes_ += n;
  return true;
}

Status FileSink::Finish() {
  if (file_ == nullptr) return Internal(path_ + ": finished twice");
  bool flushed = std::fflush(file_) == 0 && ::fsync(fileno(file_)) == 0;
  bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!error_.empty()) return FailedPrecondition(error_);
  if (!flushed || !closed) return ErrnoStatus(errno, path_ + ": write failed");
  digest_ = "sha256:" + hash_.HexDigest();
  return Status::Ok();
}

GzipSink::GzipSink(ByteSink* out, int level) : out_(out) {
  // windowBits 15 + 16: a gzip wrapper; memLevel 8 is zlib's default.
  if (deflateInit2(&z_, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    ok_ = false;
    error_ = "zlib: deflateInit2 failed";
    return;
  }
  header_.time = 0;
  header_.os = 255;
  deflateSetHeader(&z_, &header_);
}

GzipSink::~GzipSink() { deflateEnd(&z_); }

bool GzipSink::Deflate(int flush) {
  unsigned char buf[1 << 16];
  do {
    z_.next_out = buf;
    z_.avail_out = sizeof buf;
    int rc = deflate(&z_, flush);
    if (rc == Z_STREAM_ERROR) {
      error_ = "zlib: deflate failed";
      return false;
    }
    size_t have = sizeof buf - z_.avail_out;
    if (have > 0 && !out_->Write(buf, have)) {
      error_ = out_->error();
      return false;
    }
  } while (z_.avail_out == 0);
  return true;
}

bool GzipSink::Write(const void* data, size_t n) {
  if (!ok_) return false;
  hash_.Update(data, n);
  bytes_ += n;
  z_.next_in = static_cast<Bytef*>(const_cast<void*>(data));
  z_.avail_in = static_cast<uInt>(n);
  ok_ = Deflate(Z_NO_FLUSH);
  return ok_;
}

Status GzipSink::Finish() {
  if (ok_) ok_ = Deflate(Z_FINISH);
  if (!ok_) return FailedPrecondition(error_);
  digest_ = "sha256:" + hash_.HexDigest();
  return out_->Finish();
}

namespace {

constexpr size_t kBlock = 512;

// ustar numeric fields: zero-padded octal, NUL-terminated.
void Octal(char* field, size_t width, uint64_t value) {
  field[width - 1] = '\0';
  for (size_t i = width - 1; i-- > 0; value >>= 3) field[i] = static_cast<char>('0' + (value & 7));
}

// A pax extended-header record: "<len> key=value\n", where <len> counts itself.
std::string PaxRecord(const std::string& key, const std::string& value) {
  size_t body = key.size() + value.size() + 3;  // ' ', '=', '\n'
  size_t len = body + 1;
  while (std::to_string(len).size() + body != len) len = std::to_string(len).size() + body;
  return std::to_string(len) + " " + key + "=" + value + "\n";
}

// Splits `path` into ustar prefix (<= 155) and name (<= 100) at a '/'; false if it cannot.
bool SplitUstarName(const std::string& path, std::string* prefix, std::string* name) {
  if (path.size() <= 100) {
    prefix->clear();
    *name = path;
    return true;
  }
  for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    if (slash <= 155 && path.size() - slash - 1 <= 100 && path.size() - slash - 1 > 0) {
      *prefix = path.substr(0, slash);
      *name = path.substr(slash + 1);
      return true;
    }
  }
  return false;
}

}  // namespace

// The tar stream is written here rather than with libarchive: the format is
// small, every byte of it is then ours to keep deterministic, and libarchive
// would bring libxml2 and ICU (~36 MB) into every image berth builds of itself.
TarWriter::TarWriter(ByteSink* out, int64_t mtime) : out_(out), mtime_(mtime) {}

Status TarWriter::Error(const std::string& what) const {
  return FailedPrecondition(what + ": " + (out_->error().empty() ? std::string("write failed") : out_->error()));
}

Status TarWriter::Write(const void* data, size_t n, const std::string& path) {
  if (!out_->Write(data, n)) return Error("tar data for " + path);
  return Status::Ok();
}

Status TarWriter::Pad(uint64_t size, const std::string& path) {
  static const char kZeros[kBlock] = {};
  size_t rest = static_cast<size_t>(size % kBlock);
  return rest == 0 ? Status::Ok() : Write(kZeros, kBlock - rest, path);
}

Status TarWriter::Header(const std::string& path, char type, int mode, uint64_t size, const std::string& link) {
  if (finished_) return Internal("tar stream already finished");
  std::string name_in_tar = type == '5' ? path + "/" : path;
  std::string prefix, name;
  std::string pax;
  if (!SplitUstarName(name_in_tar, &prefix, &name)) {
    pax += PaxRecord("path", name_in_tar);
    prefix.clear();
    name = name_in_tar.substr(0, 99);
  }
  if (link.size() > 100) pax += PaxRecord("linkpath", link);
  if (size > 077777777777ull) pax += PaxRecord("size", std::to_string(size));
  if (!pax.empty()) {
    // The extended header's own name only has to be stable: derived from the entry's name.
    std::string base = path.substr(path.rfind('/') + 1).substr(0, 80);
    RETURN_IF_ERROR(RawHeader("PaxHeaders/" + base, "", 'x', 0644, pax.size(), ""));
    RETURN_IF_ERROR(Write(pax.data(), pax.size(), path));
    RETURN_IF_ERROR(Pad(pax.size(), path));
  }
  return RawHeader(name, prefix, type, mode, size > 077777777777ull ? 0 : size, link.substr(0, 100));
}

Status TarWriter::RawHeader(const std::string& name, const std::string& prefix, char type, int mode, uint64_t size,
                            const std::string& link) {
  char h[kBlock] = {};
  std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
  Octal(h + 100, 8, static_cast<uint64_t>(mode) & 07777);
  Octal(h + 108, 8, 0);  // uid
  Octal(h + 116, 8, 0);  // gid
  Octal(h + 124, 12, size);
  Octal(h + 136, 12, static_cast<uint64_t>(std::max<int64_t>(mtime_, 0)));
  h[156] = type;
  std::memcpy(h + 157, link.data(), std::min<size_t>(link.size(), 100));
  std::memcpy(h + 257, "ustar", 6);  // magic "ustar\0"
  std::memcpy(h + 263, "00", 2);     // version
  // uname/gname stay empty: nothing about the host's users.
  Octal(h + 329, 8, 0);  // devmajor
  Octal(h + 337, 8, 0);  // devminor
  std::memcpy(h + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
  std::memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  Octal(h + 148, 7, sum);  // six digits and a NUL, then the space already there
  return Write(h, kBlock, name);
}

Status TarWriter::AddDirectory(const std::string& path, int mode) { return Header(path, '5', mode, 0, ""); }

Status TarWriter::AddSymlink(const std::string& path, const std::string& target) {
  return Header(path, '2', 0777, 0, target);
}

Status TarWriter::AddHardlink(const std::string& path, const std::string& target, int mode) {
  return Header(path, '1', mode, 0, target);
}

Status TarWriter::AddBytes(const std::string& path, int mode, std::string_view data) {
  RETURN_IF_ERROR(Header(path, '0', mode, data.size(), ""));
  RETURN_IF_ERROR(Write(data.data(), data.size(), path));
  return Pad(data.size(), path);
}

Status TarWriter::AddFile(const std::string& path, int mode, const std::string& source, uint64_t size,
                          const std::function<void(const char*, size_t)>& on_data) {
  FILE* f = std::fopen(source.c_str(), "rb");
  if (f == nullptr) return ErrnoStatus(errno, source + ": cannot be read");
  std::unique_ptr<FILE, int (*)(FILE*)> closer(f, std::fclose);
  RETURN_IF_ERROR(Header(path, '0', mode, size, ""));
  std::vector<char> buf(1 << 20);
  uint64_t left = size;
  while (left > 0) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
    size_t got = std::fread(buf.data(), 1, want, f);
    if (got == 0) {
      return FailedPrecondition(source + (std::ferror(f) ? ": read failed: " + std::string(std::strerror(errno))
                                                         : ": shrank while it was being read"));
    }
    if (on_data) on_data(buf.data(), got);
    RETURN_IF_ERROR(Write(buf.data(), got, path));
    left -= got;
  }
  if (std::fgetc(f) != EOF) return FailedPrecondition(source + ": grew while it was being read");
  return Pad(size, path);
}

Status TarWriter::Finish() {
  if (finished_) return Internal("tar stream finished twice");
  static const char kZeros[2 * kBlock] = {};
  RETURN_IF_ERROR(Write(kZeros, sizeof kZeros, "the end of the archive"));
  finished_ = true;
  return out_->Finish();
}

}  // namespace berth
