"""Tollgate's own usage pages: the staff dashboard (/dashboard/) and the team portal's usage tab.

`stats` reads the figures, `budgets` finds budgets near their limit, `views` shows them to staff,
`portal` to the members of one team; the charts are billing/charts.py's SVG.
"""
