"""Agent skills written for this deployment: one per app and a general `keygate` one.

A skill is the Agent Skills format: a folder holding `SKILL.md`, YAML front matter (`name`,
`description`) and then markdown. Keygate renders each from the catalog with the Jinja2
templates beside this module, one per language (English and Chinese are written separately,
not translated string by string). The same texts are served at `/apps/{app}/skill` and
`/apps/skill`, and written by `keygate skills export`.
"""

from keygate.skills.render import (
    GENERAL_SKILL,
    LANGUAGES,
    Language,
    render_app_skill,
    render_general_skill,
)

__all__ = ["GENERAL_SKILL", "LANGUAGES", "Language", "render_app_skill", "render_general_skill"]
