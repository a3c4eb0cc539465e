"""Machine translation and back-translation of captions: Marian (OPUS-MT) models run through CTranslate2.

``stage`` (``ccr translate``) and ``backtranslate`` (``ccr backtranslate``) only say which rows
they owe; ``routes`` decides which model serves which language, ``schedule`` orders the owed rows,
``worker`` is the batch function both share, ``engine`` converts, loads and runs the models,
and ``signals`` computes the cheap quality columns. Which MT rows later stages read is
``ccr.corpus.views``' rule.
"""
