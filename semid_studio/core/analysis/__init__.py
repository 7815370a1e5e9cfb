"""Numbers the inspector shows: node labels and purity, 2-D maps, run comparison, similarity.

Everything here is headless (numpy + the project store) so that the GUI stays a thin layer and
the same figures can be checked in tests or printed by a script:

- :class:`.nodes.LabelCodes` / :func:`.nodes.encode_labels`: one integer per item for a label field
  (``categories[1]``, ``genre``, ...), so a node's most common label and its *purity* are one
  ``bincount`` over the node's items (:func:`.nodes.summarize_node`).
- :class:`.nodes.TermIndex`: the titles as a sparse item x word matrix; a node's *distinctive words*
  are the words that are much more frequent in the node than in the catalogue (tf-idf style).
- :func:`.nodes.usage_stats`: how evenly a node's items spread over its children (entropy).
- :func:`.maps.project_2d`: a PCA map of the item embeddings, for the embedding scatter plot.
- :func:`.compare.compare_level1`: how two quantiser runs' level-1 groups map onto each other
  (contingency matrix, NMI, ARI, best match of every group).
- :class:`.items.SimilaritySearch` / :func:`.items.similar_items`: rank items by cosine similarity of a text
  query to the item embeddings — what the playground offers before a joint search model exists.
- :func:`.items.filter_items` / :func:`.items.item_rows`: the catalogue table's filter, sort and paging in SQL,
  so a 100k-item catalogue is never loaded into Python objects to be filtered.

Modules: :mod:`.nodes` (labels, purity, usage, distinctive words), :mod:`.maps` (2-D maps),
:mod:`.compare` (run comparison), :mod:`.items` (similarity, the catalogue's filter and rows),
:mod:`.inspection` (one run loaded for the inspector) and :mod:`.reading` (columns and vectors
read without long GIL holds).
"""
