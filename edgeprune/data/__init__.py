"""Data sets edgeprune makes itself: the procedurally rendered scenes (segmentation, depth, normals)."""
