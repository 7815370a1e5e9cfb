"""PlaygroundPanel: type a query or build a history, and read the top-K items live.

Queries are answered by the project's joint search + rec model (generative search: the query
is decoded into a Semantic ID by constrained beam search, :func:`semid_studio.core.generative.joint.joint_search`)
when it has one; otherwise, or when the user picks it, they are ranked by embedding similarity
(:class:`semid_studio.core.analysis.items.SimilaritySearch`), and the panel says which. The history builder (add by
search, from the tree or catalogue by drag and drop, reorder, remove, or load a real user's
history) feeds the generative recommender: once the project has a trained model, its top-K
items (title, SID, score) follow every change of the history and of the decoding controls
(K, beam width, temperature sampling, constrained or not, leave out the history).

Every change of the inputs is debounced, computed in a worker and tagged with a request
number: a result that is not the latest is dropped. The result items' paths are highlighted
in the SID tree.

Modules: :mod:`.panel` (:class:`~.panel.PlaygroundPanel`: its widgets, the project's models,
the result tables), :mod:`.search_side` (the query and its results) and :mod:`.history_side`
(the history and the recommendations that follow it). The two sides are parts (mixins) of the
one panel: they share its widgets and its request counter.
"""
