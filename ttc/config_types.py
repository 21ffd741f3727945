"""Annotated types shared by the config and request models (recipes, jobs, router config, HTTP).

One definition per concept, so a constraint or a description is changed in one place:
a number that must be finite (JSON and YAML both admit NaN and Infinity, and a NaN
lambda or budget would turn every utility into NaN), and the recipe a config points at.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, FiniteFloat

# A weight or a setting that may be 0: finite and >= 0.
FiniteNonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
# A budget or a scale: finite and > 0.
FinitePositive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
# Any finite number (e.g. an OpenAI penalty, refused unless 0, but never NaN).
Finite = FiniteFloat

# Path of a recipe (ttc.recipe), absolute or relative to the repo; the default is CPU_RECIPE.
RecipeFile = Annotated[str, Field(description="recipe file (cluster/recipes/*.yaml): the models, prompt "
                                              "format, strategy grid and sampling")]
