"""Build a production-like PHYSLITE benchmark file from a small real one, with CERN ROOT (PyROOT).

Production PHYSLITE is written by Athena with ZSTD level 5 (ROOT setting 505), AutoFlush 1000 and baskets
capped at 128 KiB. The small example file has 100-event ZLIB-1 baskets, so concatenating copies is not enough:
the tree is re-clustered entry by entry into a new file with the production settings.

Runs in its own virtual environment with the `root` wheel (never in the project lock):

    build/rootenv/bin/python tools/bench_data/make_bench_file.py \
        --source ../shared/data/PHYSLITE_example.root --copies 500 --output build/data/physlite_bench_50k.root
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

TREE = "CollectionTree"
COMPRESSION = 505
AUTO_FLUSH = 1000
MAX_BASKET = 128 * 1024
MIN_BASKET = 1024
ENTRY_MARGIN = 4  # room for the entry that overflows a basket, in multiples of the mean entry size
KEY_MARGIN = 512

# Athena's ElementLink: a foreign class (no ClassDef) deriving from ElementLinkBase with two uint32 members.
# Foreign classes are streamed with [bytecount][version][checksum] for each of the two levels (20 bytes), like
# real data; without this declaration ROOT emulates the class and writes 12-byte element headers instead.
ELEMENT_LINK_DECLARATION = """
#include <cstdint>
template <class T> class DataVector;
namespace xAOD { %(forward)s }
class ElementLinkBase {
public:
  uint32_t m_persKey = 0;
  uint32_t m_persIndex = 0;
};
template <class STORABLE> class ElementLink : public ElementLinkBase {};
%(instantiations)s
"""


def element_link_targets(typenames: list[str]) -> list[str]:
    """The container types T of every ElementLink<T> in ROOT type names, e.g. DataVector<xAOD::Jet_v1>."""
    pattern = re.compile(r"ElementLink<\s*(DataVector<[^<>]*>)\s*>")
    return sorted({match for name in typenames for match in pattern.findall(name)})


def declare_element_links(ROOT, targets: list[str]) -> None:
    """Declare ElementLink<T> for each container type T to cling, the way Athena defines it."""
    classes = sorted({re.fullmatch(r"DataVector<\s*xAOD::(\w+)\s*>", t).group(1) for t in targets})
    declaration = ELEMENT_LINK_DECLARATION % {
        "forward": " ".join(f"class {c};" for c in classes),
        "instantiations": "\n".join(f"template class ElementLink<{t}>;" for t in targets),
    }
    if not ROOT.gInterpreter.Declare(declaration):
        raise RuntimeError("cling rejected the ElementLink declaration")


def all_branches(branch_list):
    """Every branch of a TObjArray of branches, depth first."""
    for branch in branch_list:
        yield branch
        yield from all_branches(branch.GetListOfBranches())


def is_interface_branch(branch) -> bool:
    """Top-level xAOD interface objects (DataVector<...>, EventInfo_v1, ...): no dictionary, not readable."""
    name = branch.GetName()
    return "Aux" not in name and (branch.GetClassName().startswith(("DataVector<", "xAOD::")))


def basket_sizes(source_tree, entries_per_cluster: int) -> dict[str, int]:
    """About one cluster of uncompressed bytes per branch, from the source's bytes per entry, such that a
    basket stays within 128 KiB on disk (uncompressed).

    ROOT closes a basket only after the entry that crosses the basket size, and appends 4 bytes of entry
    offset per entry of a variable-size branch, so the cap leaves room for both.
    """
    n = max(source_tree.GetEntries(), 1)
    sizes = {}
    for branch in all_branches(source_tree.GetListOfBranches()):
        per_entry = max(branch.GetTotBytes() / n, 1.0)
        leaves = branch.GetListOfLeaves()
        fixed_size = branch.GetClassName() == "" and all(
            not leaf.GetLeafCount() and leaf.GetLenStatic() == 1 for leaf in leaves
        )
        offsets_share = 1.0 if fixed_size else per_entry / (per_entry + 4)
        cap = int((MAX_BASKET - ENTRY_MARGIN * per_entry - KEY_MARGIN) * offsets_share)
        per_cluster = int(per_entry * entries_per_cluster * 1.1)
        sizes[branch.GetName()] = max(MIN_BASKET, min(cap, per_cluster))
    return sizes


def apply_basket_sizes(tree, sizes: dict[str, int]) -> None:
    for branch in all_branches(tree.GetListOfBranches()):
        size = sizes.get(branch.GetName())
        if size is not None:
            branch.SetBasketSize(size)


def build(source: Path, copies: int, output: Path) -> None:
    import ROOT

    ROOT.gROOT.SetBatch(True)
    ROOT.gErrorIgnoreLevel = ROOT.kError

    # The type names come from a first open; the declaration must precede the open that reads entries.
    probe = ROOT.TFile.Open(str(source))
    if not probe or probe.IsZombie():
        raise SystemExit(f"make_bench_file: cannot open {source}")
    probe_tree = probe.Get(TREE)
    if not probe_tree:
        raise SystemExit(f"make_bench_file: {source} has no {TREE}")
    typenames = []
    for branch in all_branches(probe_tree.GetListOfBranches()):
        typenames.append(branch.GetClassName())
        typenames.extend(leaf.GetTypeName() for leaf in branch.GetListOfLeaves())
    sizes = basket_sizes(probe_tree, AUTO_FLUSH)
    probe.Close()
    declare_element_links(ROOT, element_link_targets(typenames))

    chain = ROOT.TChain(TREE)
    for _ in range(copies):
        chain.Add(str(source))
    chain.SetBranchStatus("*", 1)
    if chain.LoadTree(0) < 0:
        raise SystemExit(f"make_bench_file: cannot read {TREE} of {source}")
    disabled = [b.GetName() for b in chain.GetListOfBranches() if is_interface_branch(b)]
    for name in disabled:
        chain.SetBranchStatus(name, 0)
        chain.SetBranchStatus(name + ".*", 0)

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    out = ROOT.TFile(str(partial), "RECREATE", "", COMPRESSION)
    tree = chain.CloneTree(0)
    tree.SetAutoFlush(AUTO_FLUSH)
    apply_basket_sizes(tree, sizes)

    total = chain.GetEntries()
    started = time.monotonic()
    for i in range(total):
        chain.GetEntry(i)
        tree.Fill()
        if i + 1 == AUTO_FLUSH:
            apply_basket_sizes(tree, sizes)  # ROOT re-optimises basket sizes at the first flush
        if (i + 1) % 5000 == 0:
            print(f"  {i + 1}/{total} entries, {time.monotonic() - started:.0f} s", flush=True)
    out.cd()
    tree.Write("", ROOT.TObject.kOverwrite)
    out.Close()
    partial.replace(output)
    print(
        f"wrote {output}: {total} entries, {len(disabled)} interface branches left out, "
        f"{output.stat().st_size / 1e6:.1f} MB in {time.monotonic() - started:.0f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, required=True, help="a small real PHYSLITE file")
    parser.add_argument("--copies", type=int, default=500, help="copies of the source's events (default 500)")
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    if not args.source.is_file():
        print(f"make_bench_file: source file {args.source} does not exist", file=sys.stderr)
        return 2
    build(args.source, args.copies, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
