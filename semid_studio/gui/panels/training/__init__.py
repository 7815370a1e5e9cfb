"""TrainingPanel: fit a quantiser, train the generative model (recommender, joint search + rec or
search only), generate search queries or make item embeddings with a strategy; progress, live
curves, cancel.

The panel holds one *form* per kind of training (a quantiser, the generative model, search
queries, an embedding strategy). A form
turns its widgets into a core task (``body(store, cancel)``); the panel runs it through the
task runner, shows its progress, plots the training loss and the validation metrics live (two
plots: their scales differ) and reports the saved result. The core saves results into the
project as they come, so a cancel or a crash loses at most the step in flight; an interrupted
generative model is offered for resuming in the form's Model box.

Modules: :mod:`.panel` (:class:`~.panel.TrainingPanel`), one per form (:mod:`.quantizer_form`,
:mod:`.generative_form`, :mod:`.queries_form`, :mod:`.strategy_form`) and :mod:`.fields` (the
input widgets every form has).
"""
