"""Machine translation and back-translation of captions: Marian (OPUS-MT) models run through CTranslate2.

``engine`` converts and loads models, ``routes`` decides which model serves which language,
``schedule`` orders the owed rows, ``worker`` is the batch function both stages share,
``signals`` computes the cheap quality columns, ``select`` picks MT rows for later stages.
"""
