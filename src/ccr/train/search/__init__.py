"""Search a trained run: the top K of a split for a text, an image file or a media id (``query``), over
gallery embeddings computed once and memory-mapped after (``cache``), read from the corpus tables
(``gallery``)."""
