"""A saved session's images table, its link-time bases and slides recomputed from the files.

`gotrace aslr --session` uses it: bind records where each object was loaded
(load base, from ld.so's load bias); the link-time base is read again from
the file on disk (ELF or Mach-O, binary/model's one rule), and the slide
follows, written back into images.parquet.
"""
from __future__ import annotations

from pathlib import Path

from ..binary.aslr import ImageBase, image_facts, to_dicts
from ..heavy import pd
from ..session import schema
from ..session.reader import load_session
from ..session.writer import write_atomic


def fill_session(path) -> list[dict]:
    """Recompute link-time base and slide for every image of a saved session
    (from the files on disk, ELF or Mach-O) and write them into images.parquet."""
    images = load_session(path).images.copy()
    rows: list[ImageBase] = []
    for pid, file, load, uuid, recorded in zip(images["pid"], images["path"], images["load_base"],
                                               images["uuid"], images["link_base"]):
        here = isinstance(file, str) and file.startswith("/")
        facts = image_facts(file) if here else None
        link, pic = (facts[0], facts[1]) if facts else (None, None)
        if isinstance(uuid, str):  # Mach-O as dyld logged it: the slice with that LC_UUID, if it is still here
            from ..binary.facts import macho_text_vmaddr

            link = macho_text_vmaddr(file, uuid) if here else None
        if link is None and not pd.isna(recorded):
            link = int(recorded)  # known at capture; the file is gone or rebuilt since
        load = None if pd.isna(load) else int(load)
        slide = load - link if link is not None and load is not None else None
        rows.append(ImageBase(int(pid), file, link, load, slide, pic, "session"))
    if rows:
        images["link_base"] = pd.array([r.link_base for r in rows], dtype="UInt64")
        images["slide"] = pd.array([r.slide for r in rows], dtype="Int64")
        write_atomic(schema.to_arrow("images", images), Path(path) / "images.parquet")
    return to_dicts(rows)
