"""The HTTP face of federation, thin: Matrix endpoints (:mod:`.endpoint` does the boundary work;
:mod:`.server`, :mod:`.serving`, :mod:`.membership` parse and call one function each) and the
``/api/v1`` REST calls about federated rooms (:mod:`.rest`). The top layer with :mod:`federation.tasks`."""
