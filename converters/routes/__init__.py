"""The converter routes, one module each; every module here registers itself in ``ROUTES``.

Adding a route is adding a module here (a :class:`onnxpipe.converters.route.Route` subclass
decorated with ``@ROUTES.register()``) and its test: the CLI, ``--backend auto``, bench and the
README's table of routes pick it up from the registry.
"""
