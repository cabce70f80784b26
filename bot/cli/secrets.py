"""`crier secret-key`: prints a new CRIER_SECRET_KEY, the key that encrypts the secrets of
accounts connected in the web app (bot.vault)."""

from __future__ import annotations

import click


@click.command("secret-key")
def secret_key() -> None:
    """Print a new random CRIER_SECRET_KEY (a Fernet key) for the environment or .env."""
    from bot.vault import ENV_KEY, generate_key
    click.echo(f"{ENV_KEY}={generate_key()}")
