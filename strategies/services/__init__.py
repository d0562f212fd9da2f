"""Writes (HackSoft "services"): keyword-only functions named <entity>_<action>."""
