{
  # The native sheet kernels (src/engine/native-sheet.ts). The compute engine is compiled three
  # times, for AVX-512, AVX2+FMA and the baseline ISA, into static libraries; the addon picks one
  # at run time with __builtin_cpu_supports, so a build copied to an older x86-64 machine never
  # executes an instruction it lacks. -O3 and FMA contraction, but never -ffast-math (NaN
  # checks and the exact-erf GELU rely on IEEE semantics).
  "variables": {
    "cf_cflags": ["-O3", "-fPIC", "-std=c++17", "-ffp-contract=fast", "-fno-math-errno", "-Wall", "-Wno-unused-function"]
  },
  "target_defaults": {
    "xcode_settings": {"GCC_OPTIMIZATION_LEVEL": "3", "CLANG_CXX_LANGUAGE_STANDARD": "c++17"}
  },
  "targets": [
    {
      "target_name": "cf_kernels_generic",
      "type": "static_library",
      "sources": ["native/sheet_kernels.cc"],
      "cflags_cc": ["<@(cf_cflags)"],
      "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(cf_cflags)"]}
    },
    {
      "target_name": "cf_kernels_avx2",
      "type": "static_library",
      "sources": ["native/sheet_kernels.cc"],
      "defines": ["CF_ISA_AVX2"],
      "conditions": [
        ["target_arch=='x64'", {
          "cflags_cc": ["<@(cf_cflags)", "-mavx2", "-mfma"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(cf_cflags)", "-mavx2", "-mfma"]}
        }, {
          "cflags_cc": ["<@(cf_cflags)"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(cf_cflags)"]}
        }]
      ]
    },
    {
      "target_name": "cf_kernels_avx512",
      "type": "static_library",
      "sources": ["native/sheet_kernels.cc"],
      "defines": ["CF_ISA_AVX512"],
      "conditions": [
        ["target_arch=='x64'", {
          "cflags_cc": ["<@(cf_cflags)", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma", "-mprefer-vector-width=512"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(cf_cflags)", "-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mavx2", "-mfma"]}
        }, {
          "cflags_cc": ["<@(cf_cflags)"],
          "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["<@(cf_cflags)"]}
        }]
      ]
    },
    {
      "target_name": "columnformer_native",
      "sources": ["native/addon.cc", "native/threads.cc", "native/adamw.cc"],
      "dependencies": ["cf_kernels_generic", "cf_kernels_avx2", "cf_kernels_avx512"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-O2", "-fPIC", "-std=c++17", "-fexceptions", "-Wall"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-fexceptions"]
      },
      "msvs_settings": {"VCCLCompilerTool": {"ExceptionHandling": 1}}
    }
  ]
}
