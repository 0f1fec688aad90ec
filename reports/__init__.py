"""Monthly and yearly charging reports (HTML and PDF) built from the session store's data and the
utility's meter data: `model` computes every figure (pure), `data` reads them from storage, `charts`,
`html` and `pdf` render the same `Report`."""
