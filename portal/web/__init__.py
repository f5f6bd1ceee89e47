"""Web plumbing the three blueprints share and domain modules never import."""
