{
  "targets": [
    {
      "target_name": "cryopod",
      "sources": [
        "src/addon/addon.cc",
        "src/addon/convert.cc",
        "src/addon/convert_files.cc",
        "src/addon/convert_memory.cc",
        "src/addon/convert_thread.cc",
        "src/core/cgroup_freezer.cc",
        "src/core/dump.cc",
        "src/core/dump_steps.cc",
        "src/core/dump_tree.cc",
        "src/core/errors.cc",
        "src/core/ipc_namespace.cc",
        "src/core/page_bitmap.cc",
        "src/core/page_copy.cc",
        "src/core/page_fill.cc",
        "src/core/parasite.cc",
        "src/core/parasite_check.cc",
        "src/core/pid_namespace.cc",
        "src/core/pid_placement.cc",
        "src/core/proc.cc",
        "src/core/remote_syscall.cc",
        "src/core/restore.cc",
        "src/core/restore_memory.cc",
        "src/core/restore_tree.cc",
        "src/core/seized_task.cc",
        "src/core/stub_process.cc",
        "src/core/vmas.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
    }
  ]
}
