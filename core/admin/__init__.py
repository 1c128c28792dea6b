"""Admin building blocks every app's admin uses: record mixins, staff steps, the paginator."""
