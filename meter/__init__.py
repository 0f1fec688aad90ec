"""The home's smart-meter data and bills from the utility's Opower portal (optional ground truth)."""
