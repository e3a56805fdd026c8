"""Reports rendered from results folders: ``paper`` sets the paper's numbers
(``paper_reference.yaml``) beside ours and judges its claims (``analogsim report``)."""
