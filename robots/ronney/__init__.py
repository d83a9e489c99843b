"""Ronney: income-support (ekonomiskt bistånd) applications prepared overnight for a case worker."""
