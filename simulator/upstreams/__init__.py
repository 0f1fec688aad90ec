"""One module per simulated upstream: pure payload builders on top, thin aiohttp handlers below."""
