"""Federation settings (Matrix). Imported at the end of ``chat.settings``; owned by the federation app."""
