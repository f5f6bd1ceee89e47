"""Back-office accounts: creation and invites, the password policy, the second factor and the
signed links for passwords."""
