#!/usr/bin/env python3
"""Hand an embeddings artifact (`simcse-embed embed`'s Parquet: id, text, embedding) to a vector
database, for corpora past what one machine's `index`/`serve` should hold.

    # LanceDB (embedded, reads the Parquet's Arrow batches directly; pip install lancedb)
    python3 scripts/vector_db.py lancedb --embeddings emb.parquet --db lance/ [--table sentences]
        [--index ivf-pq|ivf-hnsw-sq]   # an ANN index for millions of rows (else exact scans)
    # Qdrant (pip install qdrant-client): a server, or its local mode with no server at all
    python3 scripts/vector_db.py qdrant --embeddings emb.parquet --url http://localhost:6333
    python3 scripts/vector_db.py qdrant --embeddings emb.parquet --path qdrant/   # local mode

Both load the rows 8,192 at a time (`--batch-rows`), keep `id` and `text` next to each vector (the
row number is the Qdrant point id), and compare by cosine, as `search` does. With
`--query-rows 0,17` the script then searches with those rows' own vectors and prints one JSON
line per query: {"row": R, "ids": [...best k ids...], "scores": [...cosines...]} (the test
`vector_dbs_find_what_search_finds` compares them with `search`).
"""

import argparse
import json
import sys


def batches(path, rows=8192):
    """The artifact's rows as (pyarrow RecordBatch, first row number), `rows` at a time."""
    import pyarrow.parquet as pq

    f = pq.ParquetFile(path)
    names = f.schema_arrow.names
    if names[:3] != ["id", "text", "embedding"]:
        sys.exit(f"{path}: columns {names}, expected id, text, embedding (an `embed` output)")
    first = 0
    for b in f.iter_batches(batch_size=rows, columns=["id", "text", "embedding"]):
        yield b, first
        first += b.num_rows


def vector_of(path, row):
    for b, first in batches(path):
        if first <= row < first + b.num_rows:
            return b.column("embedding")[row - first].as_py()
    sys.exit(f"{path}: no row {row}")


def lancedb(a):
    import lancedb
    import pyarrow as pa

    db = lancedb.connect(a.db)
    schema = next(batches(a.embeddings))[0].schema
    parts = (b for b, _ in batches(a.embeddings, a.batch_rows))
    reader = pa.RecordBatchReader.from_batches(schema, parts)
    table = db.create_table(a.table, data=reader, mode="overwrite")
    if a.index:
        from lancedb.index import HnswSq, IvfPq

        config = {"ivf-pq": IvfPq, "ivf-hnsw-sq": HnswSq}[a.index](distance_type="cosine")
        table.create_index("embedding", config=config)
    print(f"{a.db}: table {a.table} holds {table.count_rows()} rows", file=sys.stderr)
    for row in a.query_rows:
        hits = (
            table.search(vector_of(a.embeddings, row), vector_column_name="embedding")
            .metric("cosine")
            .limit(a.k)
            .to_list()
        )
        print(json.dumps({
            "row": row,
            "ids": [h["id"] for h in hits],
            "scores": [1.0 - h["_distance"] for h in hits],
        }, ensure_ascii=False))


def qdrant(a):
    from qdrant_client import QdrantClient, models

    client = QdrantClient(url=a.url) if a.url else QdrantClient(path=a.path)
    dim = next(batches(a.embeddings))[0].schema.field("embedding").type.list_size
    if client.collection_exists(a.collection):
        client.delete_collection(a.collection)
    client.create_collection(
        a.collection,
        vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
    )
    for b, first in batches(a.embeddings, a.batch_rows):
        ids, texts = b.column("id").to_pylist(), b.column("text").to_pylist()
        vectors = b.column("embedding").to_pylist()
        client.upload_points(a.collection, [
            models.PointStruct(id=first + i, vector=v, payload={"id": ids[i], "text": texts[i]})
            for i, v in enumerate(vectors)
        ])
    print(f"{a.url or a.path}: collection {a.collection} holds "
          f"{client.count(a.collection).count} points", file=sys.stderr)
    for row in a.query_rows:
        hits = client.query_points(
            a.collection, query=vector_of(a.embeddings, row), limit=a.k, with_payload=True
        ).points
        print(json.dumps({
            "row": row,
            "ids": [h.payload["id"] for h in hits],
            "scores": [h.score for h in hits],
        }, ensure_ascii=False))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="to", required=True, metavar="lancedb|qdrant")
    lance = sub.add_parser("lancedb", help="write a LanceDB table")
    lance.add_argument("--db", required=True, help="the LanceDB folder (or URI)")
    lance.add_argument("--table", default="sentences")
    lance.add_argument("--index", choices=["ivf-pq", "ivf-hnsw-sq"],
                       help="an ANN index (without: exact scans, fine up to ~100k rows)")
    q = sub.add_parser("qdrant", help="fill a Qdrant collection")
    where = q.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a Qdrant server, e.g. http://localhost:6333")
    where.add_argument("--path", help="Qdrant's local mode: a folder, or :memory:")
    q.add_argument("--collection", default="sentences")
    for s in (lance, q):
        s.add_argument("--embeddings", required=True, help="an `embed` output (Parquet)")
        s.add_argument("--query-rows", default="", help="rows whose vectors to search with: 0,17")
        s.add_argument("-k", type=int, default=10)
        s.add_argument("--batch-rows", type=int, default=8192, help="rows read and sent at a time")
    a = p.parse_args()
    a.query_rows = [int(r) for r in a.query_rows.split(",") if r]
    try:
        {"lancedb": lancedb, "qdrant": qdrant}[a.to](a)
    except ImportError as e:
        package = {"lancedb": "lancedb", "qdrant": "qdrant-client"}[a.to]
        sys.exit(f"vector_db.py {a.to}: {e} (pip install {package})")


if __name__ == "__main__":
    main()
