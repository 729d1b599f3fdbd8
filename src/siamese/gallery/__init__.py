"""Image search at scale: a persistent index of a gallery (`store`), built and updated in batches
(`build`, `embed`), searched exactly or through FAISS (`nearest`, `approximate`), answers written
as tables and pictures (`results`), and served over HTTP (`app`, `page`)."""
