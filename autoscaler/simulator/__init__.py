"""`petit simulate`: a fleet simulator fed by real traces, running the same `decide`
as the live controller next to baseline policies. Pure package: no Ray, no
Kubernetes; matplotlib is imported only to draw plots."""
