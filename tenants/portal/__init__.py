"""The team portal (/portal/): members log in with Django auth and manage their teams' keys.

`access` maps a login to an internal user and a team page to a membership (404 otherwise),
`views` shows a team's budget and keys, `members` lets team admins manage the roster, `forms`
holds the forms, including the password reset that gives a member their first password.
The usage tab is billing's (billing/dashboard/portal.py): tenants never imports billing.
"""
