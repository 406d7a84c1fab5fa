"""Network architectures shared by several systems (a seed system never imports another; shared layers live here)."""
