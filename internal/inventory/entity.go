package inventory

// IsEntity marks Product as an Apollo Federation entity of the GraphQL
// subgraph (gqlgen's federation runtime asks its entities for it).
func (Product) IsEntity() {}

// IsEntity marks Location as an Apollo Federation entity (see Product's).
func (Location) IsEntity() {}
