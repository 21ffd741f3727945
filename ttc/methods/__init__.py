"""Test-time-compute methods, one module each; importing this package registers them.

To add a method: write one module with a `@register` Method subclass and add one line here.
The order of the lines is the order of the one-hot method features.
"""

from ttc.methods import majority  # noqa: F401
from ttc.methods import best_of_n  # noqa: F401
from ttc.methods import weighted_best_of_n  # noqa: F401
from ttc.methods import beam_search  # noqa: F401
from ttc.methods import escalate  # noqa: F401
from ttc.methods.registry import Method, feature_layout, get_method, method_names, register  # noqa: F401
