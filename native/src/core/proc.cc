#include "proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "errors.h"

namespace cryopod {

std::vector<uint8_t> read_binary(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno_at("open", path);
  std::vector<uint8_t> out;
  uint8_t buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      close(fd);
      throw_errno_at("read", path, e);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  close(fd);
  return out;
}

std::string read_text(const std::string& path) {
  auto b = read_binary(path);
  return std::string(b.begin(), b.end());
}

std::string read_link(const std::string& path) {
  char buf[4096];
  ssize_t n = readlink(path.c_str(), buf, sizeof buf - 1);
  if (n < 0) throw_errno_at("readlink", path);
  return std::string(buf, n);
}

static std::string proc_path(int pid, const char* what) { return "/proc/" + std::to_string(pid) + "/" + what; }

namespace {
ProcStatus parse_status(const std::string& text) {
  ProcStatus st;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, colon);
    std::istringstream val(line.substr(colon + 1));
    if (key == "State") {
      val >> st.state;
    } else if (key == "Threads") {
      val >> st.threads;
    } else if (key == "TracerPid") {
      val >> st.tracer_pid;
    } else if (key == "Umask") {
      std::string s;
      val >> s;
      st.umask = std::strtoul(s.c_str(), nullptr, 8);
    } else if (key == "Uid") {
      for (auto& u : st.uid) val >> u;
    } else if (key == "Gid") {
      for (auto& g : st.gid) val >> g;
    } else if (key == "NSpid" || key == "NSpgid" || key == "NSsid") {
      std::vector<int>& ids = key == "NSpid" ? st.ns_pid : key == "NSpgid" ? st.ns_pgid : st.ns_sid;
      for (int id; val >> id;) ids.push_back(id);
    }
  }
  return st;
}
}  // namespace

ProcStatus read_status(int pid) { return parse_status(read_text(proc_path(pid, "status"))); }

ProcStatus read_thread_status(int pid, int tid) {
  return parse_status(read_text("/proc/" + std::to_string(pid) + "/task/" + std::to_string(tid) + "/status"));
}

ProcStat read_stat(int pid) {
  std::string text = read_text(proc_path(pid, "stat"));
  // comm may hold spaces and parentheses: fields start after the last ')'.
  auto rp = text.rfind(')');
  if (rp == std::string::npos) throw CoreError("EPROC", "cannot parse /proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(text.substr(rp + 2));
  std::vector<std::string> f;  // f[0] is field 3 (state)
  std::string tok;
  while (in >> tok) f.push_back(tok);
  auto field = [&](size_t n) -> uint64_t {  // n: 1-based field number of proc(5)
    size_t i = n - 3;
    return i < f.size() ? std::strtoull(f[i].c_str(), nullptr, 10) : 0;
  };
  ProcStat st;
  st.state = f.empty() ? '?' : f[0][0];
  st.ppid = (int)field(4);
  st.pgrp = (int)field(5);
  st.session = (int)field(6);
  st.starttime = field(22);
  st.start_code = field(26);
  st.end_code = field(27);
  st.start_stack = field(28);
  st.start_data = field(45);
  st.end_data = field(46);
  st.start_brk = field(47);
  st.arg_start = field(48);
  st.arg_end = field(49);
  st.env_start = field(50);
  st.env_end = field(51);
  return st;
}

bool SmapsEntry::has_flag(const char* f) const {
  return std::find(vm_flags.begin(), vm_flags.end(), f) != vm_flags.end();
}

// A maps line: "start-end perms offset major:minor inode   name".
static bool parse_maps_line(const std::string& line, SmapsEntry& e) {
  unsigned maj = 0, min = 0;
  unsigned long long start, end, off, ino;
  char perms[8] = {0};
  int consumed = 0;
  if (sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj, &min, &ino,
             &consumed) < 7)
    return false;
  e.start = start;
  e.end = end;
  e.offset = off;
  e.perms = perms;
  e.dev = makedev(maj, min);
  e.inode = ino;
  e.name = consumed > 0 && (size_t)consumed <= line.size() ? line.substr(consumed) : "";
  return true;
}

std::vector<SmapsEntry> read_smaps(int pid) { return read_maps_file(pid, "smaps"); }

std::vector<SmapsEntry> read_maps_file(int pid, const char* which) {
  std::istringstream in(read_text(proc_path(pid, which)));
  std::vector<SmapsEntry> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    // Header lines start with a hex address followed by '-'; attribute lines with "Key:".
    bool header = std::isxdigit((unsigned char)line[0]) && line.find('-') < line.find(' ');
    if (header) {
      SmapsEntry e;
      if (!parse_maps_line(line, e)) throw CoreError("EPROC", "cannot parse smaps line: " + line);
      out.push_back(std::move(e));
    } else if (line.rfind("VmFlags:", 0) == 0 && !out.empty()) {
      std::istringstream fl(line.substr(8));
      std::string f;
      while (fl >> f) out.back().vm_flags.push_back(f);
    }
  }
  return out;
}

FdInfo read_fdinfo(int pid, int fd) {
  FdInfo fi;
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/fdinfo/" + std::to_string(fd)));
  std::string key, val;
  while (in >> key >> val) {
    if (key == "pos:") fi.pos = std::strtoull(val.c_str(), nullptr, 10);
    if (key == "flags:") fi.flags = (int)std::strtoul(val.c_str(), nullptr, 8);
    std::string rest;
    std::getline(in, rest);
  }
  return fi;
}

std::vector<int> list_fds(int pid) {
  std::string dir = proc_path(pid, "fd");
  DIR* d = opendir(dir.c_str());
  if (!d) throw_errno_at("opendir", dir);
  std::vector<int> fds;
  while (dirent* de = readdir(d)) {
    if (de->d_name[0] == '.') continue;
    fds.push_back(std::atoi(de->d_name));
  }
  closedir(d);
  std::sort(fds.begin(), fds.end());
  return fds;
}

}  // namespace cryopod
