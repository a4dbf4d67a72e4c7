"""dyld-1378's loader structures transcribed field by field, laid out by ctypes (the C ABI).

Independent of tracer/capture/lldb/dyld_recorder.py's constants: the declarations are copied
from apple-oss-distributions/dyld at tag dyld-1378 (dyld/Loader.h: class Loader and its
ResolvedSymbol; dyld/JustInTimeLoader.h: the members after Loader's), and ctypes places them
by the same rules as clang for arm64 and x86_64 Darwin (LP64: natural alignment, bit fields
packed into their declared unit). In dyld itself SUPPORT_VM_LAYOUT is 1 (common/Defines.h),
so JustInTimeLoader's first member is the pointer ``const MachOLoaded* mappedAddress``.
Not run on macOS.
"""
from __future__ import annotations

import ctypes as C


class LoaderRef(C.Structure):  # uint16_t index : 15, app : 1
    _fields_ = [("index", C.c_uint16, 15), ("app", C.c_uint16, 1)]


class Loader(C.Structure):
    _fields_ = [
        ("magic", C.c_uint32),  # const uint32_t magic; // kMagic
        # const uint16_t isPrebuilt : 1, dylibInDyldCache : 1, hasObjC : 1, mayHavePlusLoad : 1,
        # hasReadOnlyData : 1, neverUnload : 1, leaveMapped : 1, hasReadOnlyObjC : 1, pre2022Binary : 1,
        # isPremapped : 1, hasUUIDLoadCommand : 1, hasWeakDefs : 1, hasTLVs : 1, belowLibSystem : 1,
        # hasFuncVarFixups : 1, padding : 1;
        *[(f"bit{i}", C.c_uint16, 1) for i in range(16)],
        ("ref", LoaderRef),  # LoaderRef ref;
        ("uuid", C.c_ubyte * 16),  # uuid_t uuid; (unsigned char[16])
        ("cpusubtype", C.c_uint32),
        ("unused", C.c_uint32),
    ]


class JustInTimeLoader(C.Structure):  # class JustInTimeLoader : public Loader
    _fields_ = [("base", Loader), ("mappedAddress", C.c_void_p)]  # const MachOLoaded* mappedAddress;


class ResolvedSymbol(C.Structure):  # Loader::ResolvedSymbol
    _fields_ = [
        ("targetLoader", C.c_void_p),
        ("targetSymbolName", C.c_void_p),
        ("targetRuntimeOffset", C.c_uint64),
        ("targetAddressForDlsym", C.c_size_t),  # uintptr_t
        ("kind", C.c_int),  # enum class Kind { rebase, bindToImage, bindAbsolute } (int-sized)
        ("isCode", C.c_bool), ("isWeakDef", C.c_bool), ("isMissingFlatLazy", C.c_bool),
        ("isMaterializing", C.c_bool), ("isFunctionVariant", C.c_bool),
        ("variantIndex", C.c_uint16),
    ]


KIND = {"rebase": 0, "bindToImage": 1, "bindAbsolute": 2}  # the enum's values, in declaration order


def multichar(text: str) -> int:
    """A C multi-character constant such as 'l4yd' (Loader::kMagic): clang and gcc give each
    character a byte, the first the most significant."""
    value = 0
    for ch in text:
        value = (value << 8) | ord(ch)
    return value


LOADER_MAGIC = multichar("l4yd")
MAPPED_ADDRESS = JustInTimeLoader.mappedAddress.offset
