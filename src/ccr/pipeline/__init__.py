"""Orchestration: recipes, their step kinds, `ccr pipeline run` and the demo recipe.

A recipe is a TOML plan read and checked before anything runs (`recipe`, `plan`); its steps are
corpus stages from the stage table or the kinds here (train, evaluate, export, report, info,
noise-eval, check: `kinds`); `orchestrate` runs them in order, and `demo.toml` is the recipe
`ccr demo` runs. Stages, formats and training live below: this package only decides what runs,
in which order, on which corpus, so a recipe, the demo and hand-typed commands do the same work.
"""
