"""The federated engine: the round (`round.Federation`), where it runs (`executors`: a Ray actor
pool or this process), the ClientWorker that hosts a model and serves clients (`worker`), local
training and evaluation (`training`), and the Ray driver actor (`driver`)."""
