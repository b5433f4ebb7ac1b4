"""The page's Streamlit side: the sections that need Streamlit and the browser elements they mount."""
