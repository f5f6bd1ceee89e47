"""Web plumbing the three blueprints share and domain modules never import: the owner of a
page's transaction, form pieces, the edge's refusals, error pages, headers, health."""
