// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {AccessControlDefaultAdminRules} from "@openzeppelin/contracts/access/extensions/AccessControlDefaultAdminRules.sol";
import {IParticipantRegistry, Roles} from "./interfaces/IParticipantRegistry.sol";
import {ParticipantGated} from "./base/ParticipantGated.sol";

/// @title ReceivableRegistry
/// @notice Each invoice is an ERC-721 receivable minted by its supplier. The buyer (core
/// enterprise) confirms it, an irrevocable promise to pay whoever holds it at maturity, or
/// disputes it. Only confirmed receivables move: they are transferred, split into children for
/// lower-tier suppliers, or financed through the {Financing} contract (the servicer, fixed at
/// construction), which also records repayments and delinquency here. Nothing moves while the
/// platform is paused: every path asks the participant registry, which then refuses.
/// @dev Receivable ids are derived, not counted: keccak256(supplier, buyer, invoice number hash)
/// for invoices and keccak256(parent, index) for split children. So an id is known before its
/// transaction is mined, and a second registration of the same invoice collides with the first
/// without a separate uniqueness index. The invoice number is only ever seen as a hash. Data no
/// contract reads (issue date, invoice number and document hashes) lives in events only, and
/// what contracts do read fits one slot: the buyer as its participant id, amounts as uint64
/// minor units (up to 1.8e17 units of a two-decimal currency).
contract ReceivableRegistry is ERC721, ParticipantGated {
    enum Status {
        None,
        Registered,
        Confirmed,
        Disputed,
        Cancelled,
        Split,
        Repaid
    }

    enum Delinquency {
        None,
        Overdue,
        Defaulted
    }

    /// @dev One slot.
    struct Receivable {
        uint32 buyerId; // participant id of the buyer
        uint64 amount; // face amount in the currency's minor units
        uint64 repaid;
        uint40 dueDate;
        bytes3 currency;
        Status status;
        uint16 childCount;
        Delinquency delinquency;
    }

    /// @notice A receivable as the outside world reads it.
    struct ReceivableView {
        address buyer;
        address holder; // zero once cancelled or split (a repaid receivable keeps its last holder)
        uint64 amount;
        uint64 repaid;
        uint40 dueDate;
        bytes3 currency;
        Status status;
        Delinquency delinquency;
        uint256 parentId;
    }

    /// @notice What a supplier states about one invoice.
    struct Registration {
        address buyer;
        uint64 amount;
        bytes3 currency;
        uint40 issueDate;
        uint40 dueDate;
        bytes32 invoiceNumberHash;
        bytes32 documentHash; // SHA-256 of the invoice document
    }

    /// @notice The most children one split may create (child counts are stored in 16 bits).
    uint256 public constant MAX_SPLIT_PARTS = 100;

    /// @notice The financing contract: moves receivables in delivery-versus-payment settlements
    /// and records the buyer's repayments and delinquency.
    address public immutable servicer;

    mapping(uint256 id => Receivable) private _receivables;
    mapping(uint256 childId => uint256) private _parentOf;

    event ReceivableRegistered(
        uint256 indexed id,
        address indexed supplier,
        address indexed buyer,
        uint64 amount,
        bytes3 currency,
        uint40 issueDate,
        uint40 dueDate,
        bytes32 invoiceNumberHash,
        bytes32 documentHash
    );
    event ReceivableConfirmed(uint256 indexed id);
    event ReceivableDisputed(uint256 indexed id, uint8 reasonCode);
    event ReceivableCancelled(uint256 indexed id, address indexed supplier);
    event ReceivableSplit(uint256 indexed parentId, uint256[] childIds, uint64[] amounts);
    /// @notice The holder paid is the receivable's owner (see its ERC-721 Transfer events).
    event RepaymentRecorded(uint256 indexed id, uint64 amount, uint64 repaidTotal);
    event DelinquencyChanged(uint256 indexed id, Delinquency delinquency);

    error EmptyBatch();
    error ZeroAmount();
    error InvalidCurrency();
    error MissingHash();
    error SelfInvoice(address supplier);
    error InvalidDates(uint40 issueDate, uint40 dueDate);
    error DueDateInPast(uint40 dueDate);
    error DuplicateReceivable(uint256 id);
    error UnknownReceivable(uint256 id);
    error NotBuyer(uint256 id, address account);
    error NotHolder(uint256 id, address account);
    error UnexpectedStatus(uint256 id, Status status);
    error NotConfirmed(uint256 id, Status status);
    error InvalidReasonCode();
    error InvalidSplit(uint256 parts);
    error SplitAmountMismatch(uint256 id, uint256 expected, uint256 actual);
    error AlreadyPartlyRepaid(uint256 id);
    error Delinquent(uint256 id, Delinquency delinquency);
    error RepaymentExceedsOutstanding(uint256 id, uint64 outstanding);
    error NotServicer(address caller);
    error CurrencyMismatch(uint256 id, bytes3 currency);

    modifier onlyServicer() {
        if (msg.sender != servicer) revert NotServicer(msg.sender);
        _;
    }

    constructor(IParticipantRegistry participants_, address servicer_, Administration memory administration)
        ERC721("Anchorline Receivable", "ALR")
        ParticipantGated(participants_, administration)
    {
        if (servicer_ == address(0)) revert ZeroAddress();
        servicer = servicer_;
    }

    // ---------------------------------------------------------------- registration

    /// @notice Registers one invoice of the caller (an active supplier) as a receivable it holds.
    /// @return id The receivable id, equal to {receivableId}(caller, buyer, invoiceNumberHash).
    function register(Registration calldata registration) external returns (uint256 id) {
        (, uint32 buyerId) = _requireParticipants(msg.sender, Roles.SUPPLIER, registration.buyer, Roles.BUYER);
        id = _register(registration, buyerId);
    }

    /// @notice Registers many invoices of the caller in one transaction; all or none.
    function registerBatch(Registration[] calldata registrations) external {
        uint256 count = registrations.length;
        if (count == 0) revert EmptyBatch();
        _requireParticipant(msg.sender, Roles.SUPPLIER);
        // A batch usually bills few buyers: ask the participant registry once per run of a buyer.
        address checkedBuyer = address(0);
        uint32 buyerId = 0;
        for (uint256 i; i < count; ++i) {
            address buyer = registrations[i].buyer;
            if (i == 0 || buyer != checkedBuyer) {
                buyerId = _requireParticipant(buyer, Roles.BUYER);
                checkedBuyer = buyer;
            }
            _register(registrations[i], buyerId);
        }
    }

    function _register(Registration calldata r, uint32 buyerId) private returns (uint256 id) {
        if (r.buyer == msg.sender) revert SelfInvoice(msg.sender);
        if (r.amount == 0) revert ZeroAmount();
        if (r.currency == bytes3(0)) revert InvalidCurrency();
        if (r.invoiceNumberHash == bytes32(0) || r.documentHash == bytes32(0)) revert MissingHash();
        if (r.dueDate <= r.issueDate) revert InvalidDates(r.issueDate, r.dueDate);
        if (r.dueDate <= block.timestamp) revert DueDateInPast(r.dueDate);
        id = receivableId(msg.sender, r.buyer, r.invoiceNumberHash);
        if (_receivables[id].status != Status.None) revert DuplicateReceivable(id);
        _receivables[id] = Receivable({
            buyerId: buyerId,
            amount: r.amount,
            repaid: 0,
            dueDate: r.dueDate,
            currency: r.currency,
            status: Status.Registered,
            childCount: 0,
            delinquency: Delinquency.None
        });
        _mint(msg.sender, id);
        emit ReceivableRegistered(
            id, msg.sender, r.buyer, r.amount, r.currency, r.issueDate, r.dueDate, r.invoiceNumberHash, r.documentHash
        );
    }

    // ---------------------------------------------------------------- buyer's answer

    /// @notice The buyer confirms the payable: an irrevocable promise to pay the holder at maturity.
    /// @dev A disputed receivable can still be confirmed once the dispute is settled.
    function confirm(uint256 id) external {
        _confirm(id, _requireParticipant(msg.sender, Roles.BUYER));
    }

    /// @notice Confirms several payables of the caller at once; all or none.
    function confirmBatch(uint256[] calldata ids) external {
        if (ids.length == 0) revert EmptyBatch();
        uint32 buyerId = _requireParticipant(msg.sender, Roles.BUYER);
        for (uint256 i; i < ids.length; ++i) {
            _confirm(ids[i], buyerId);
        }
    }

    function _confirm(uint256 id, uint32 buyerId) private {
        Receivable storage receivable = _asBuyer(id, buyerId);
        Status status = receivable.status;
        if (status != Status.Registered && status != Status.Disputed) revert UnexpectedStatus(id, status);
        receivable.status = Status.Confirmed;
        emit ReceivableConfirmed(id);
    }

    /// @notice The buyer disputes a registered payable.
    /// @param reasonCode The buyer's reason (non-zero; the codes are listed in the API docs).
    function dispute(uint256 id, uint8 reasonCode) external {
        uint32 buyerId = _requireParticipant(msg.sender, Roles.BUYER);
        if (reasonCode == 0) revert InvalidReasonCode();
        Receivable storage receivable = _asBuyer(id, buyerId);
        if (receivable.status != Status.Registered) revert UnexpectedStatus(id, receivable.status);
        receivable.status = Status.Disputed;
        emit ReceivableDisputed(id, reasonCode);
    }

    /// @notice The supplier withdraws an invoice the buyer has not confirmed. The id stays
    /// taken: the same invoice can never be registered again.
    function cancel(uint256 id) external {
        _requireParticipant(msg.sender, Roles.SUPPLIER);
        Receivable storage receivable = _asHolder(id);
        Status status = receivable.status;
        if (status != Status.Registered && status != Status.Disputed) revert UnexpectedStatus(id, status);
        receivable.status = Status.Cancelled;
        _burn(id);
        emit ReceivableCancelled(id, msg.sender);
    }

    // ---------------------------------------------------------------- moving confirmed receivables

    /// @notice Splits a confirmed, unpaid receivable into children whose amounts sum exactly to
    /// the parent's, each minted to its holder (the caller or parties it pays, such as its own
    /// suppliers). The parent is retired; the children carry the buyer's confirmation.
    function split(uint256 id, uint64[] calldata amounts, address[] calldata holders)
        external
        returns (uint256[] memory childIds)
    {
        _requireParticipant(msg.sender, Roles.HOLDER);
        Receivable storage parent = _asHolder(id);
        uint256 parts = amounts.length;
        if (parts < 2 || parts > MAX_SPLIT_PARTS || holders.length != parts) revert InvalidSplit(parts);
        if (parent.status != Status.Confirmed) revert NotConfirmed(id, parent.status);
        if (parent.repaid != 0) revert AlreadyPartlyRepaid(id);
        if (parent.delinquency != Delinquency.None) revert Delinquent(id, parent.delinquency);

        Receivable memory template = parent;
        uint256 total = 0;
        childIds = new uint256[](parts);
        for (uint256 i; i < parts; ++i) {
            if (amounts[i] == 0) revert ZeroAmount();
            total += amounts[i];
            childIds[i] = childId(id, i);
        }
        if (total != template.amount) revert SplitAmountMismatch(id, template.amount, total);

        parent.status = Status.Split;
        parent.childCount = uint16(parts);
        _burn(id);
        for (uint256 i; i < parts; ++i) {
            _requireParticipant(holders[i], Roles.HOLDER);
            uint256 child = childIds[i];
            _receivables[child] = Receivable({
                buyerId: template.buyerId,
                amount: amounts[i],
                repaid: 0,
                dueDate: template.dueDate,
                currency: template.currency,
                status: Status.Confirmed,
                childCount: 0,
                delinquency: Delinquency.None
            });
            _parentOf[child] = id;
            _mint(holders[i], child);
        }
        emit ReceivableSplit(id, childIds, amounts);
    }

    /// @notice Moves a confirmed receivable from its holder `from` to `to` as part of a
    /// settlement; the servicer moves the payment in the same transaction, and has checked
    /// that both ends are active holders.
    /// @return outstanding What the buyer still owes on the receivable.
    function transferBySettlement(address from, address to, uint256 id)
        external
        onlyServicer
        returns (uint64 outstanding)
    {
        Receivable storage receivable = _receivables[id];
        if (receivable.status != Status.Confirmed) revert NotConfirmed(id, receivable.status);
        address holder = _ownerOf(id);
        if (holder != from) revert NotHolder(id, from);
        // Straight to ERC721's bookkeeping: the status and both participants are checked.
        super._update(to, id, address(0));
        return receivable.amount - receivable.repaid;
    }

    /// @notice Records the servicer's finding that a receivable is overdue or defaulted (the
    /// servicer's own event says why).
    function setDelinquency(uint256 id, Delinquency delinquency) external onlyServicer {
        _receivables[id].delinquency = delinquency;
        emit DelinquencyChanged(id, delinquency);
    }

    /// @notice Records a repayment of `amount` in `currency` by the buyer with participant id
    /// `payerId`; the servicer moves the money to the holder in the same transaction. Full
    /// repayment closes the receivable for good (it can no longer move). The pause reaches this
    /// through the servicer's participant checks.
    /// @return holder Who is paid: the current holder.
    /// @return outstanding What remains to be paid after this repayment.
    /// @return delinquency Whether the receivable was overdue or defaulted.
    function recordRepayment(uint256 id, uint32 payerId, uint64 amount, bytes3 currency)
        external
        onlyServicer
        returns (address holder, uint64 outstanding, Delinquency delinquency)
    {
        if (amount == 0) revert ZeroAmount();
        Receivable memory receivable = _receivables[id];
        if (receivable.buyerId != payerId) revert NotBuyer(id, participants.accountOf(payerId));
        if (receivable.currency != currency) revert CurrencyMismatch(id, receivable.currency);
        if (receivable.status != Status.Confirmed) revert NotConfirmed(id, receivable.status);
        outstanding = receivable.amount - receivable.repaid;
        if (amount > outstanding) revert RepaymentExceedsOutstanding(id, outstanding);
        outstanding -= amount;
        receivable.repaid += amount;
        if (outstanding == 0) receivable.status = Status.Repaid;
        _receivables[id] = receivable;
        holder = _ownerOf(id);
        delinquency = receivable.delinquency;
        emit RepaymentRecorded(id, amount, receivable.repaid);
    }

    // ---------------------------------------------------------------- views

    /// @notice The id a supplier's invoice gets (and keeps: it can never be registered twice).
    function receivableId(address supplier, address buyer, bytes32 invoiceNumberHash) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(supplier, buyer, invoiceNumberHash)));
    }

    /// @notice The id of part `index` of a split of `parentId`.
    function childId(uint256 parentId, uint256 index) public pure returns (uint256) {
        return uint256(keccak256(abi.encode(parentId, index)));
    }

    /// @notice Everything known about a receivable (status None when the id is unknown).
    function getReceivable(uint256 id) external view returns (ReceivableView memory) {
        Receivable memory receivable = _receivables[id];
        return ReceivableView({
            buyer: participants.accountOf(receivable.buyerId),
            holder: _ownerOf(id),
            amount: receivable.amount,
            repaid: receivable.repaid,
            dueDate: receivable.dueDate,
            currency: receivable.currency,
            status: receivable.status,
            delinquency: receivable.delinquency,
            parentId: _parentOf[id]
        });
    }

    /// @notice The stored receivable and its current holder in one call, for the servicer.
    function receivableWithHolder(uint256 id) external view returns (Receivable memory receivable, address holder) {
        return (_receivables[id], _ownerOf(id));
    }

    /// @notice The receivable `id` was split from, or zero for an original invoice.
    function parentOf(uint256 id) external view returns (uint256) {
        return _parentOf[id];
    }

    /// @notice The children of a split receivable, in split order (empty if never split).
    function childrenOf(uint256 id) external view returns (uint256[] memory children) {
        uint256 count = _receivables[id].childCount;
        children = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            children[i] = childId(id, i);
        }
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId)
        public
        view
        override(ERC721, AccessControlDefaultAdminRules)
        returns (bool)
    {
        return super.supportsInterface(interfaceId);
    }

    // ---------------------------------------------------------------- internals

    /// @dev Every transfer (not mint or burn) needs a confirmed receivable and active holders
    /// on both ends (which also stops transfers while the platform is paused); a transfer by an
    /// approved operator also needs the operator to be an active participant.
    function _update(address to, uint256 id, address auth) internal override returns (address) {
        address from = _ownerOf(id);
        if (from != address(0) && to != address(0)) {
            Status status = _receivables[id].status;
            if (status != Status.Confirmed) revert NotConfirmed(id, status);
            _requireParticipants(from, Roles.HOLDER, to, Roles.HOLDER);
            if (auth != from) _requireParticipant(auth, Roles.ANY);
        }
        return super._update(to, id, auth);
    }

    function _asBuyer(uint256 id, uint32 buyerId) private view returns (Receivable storage receivable) {
        receivable = _receivables[id];
        if (receivable.status == Status.None) revert UnknownReceivable(id);
        if (receivable.buyerId != buyerId) revert NotBuyer(id, msg.sender);
    }

    function _asHolder(uint256 id) private view returns (Receivable storage receivable) {
        receivable = _receivables[id];
        if (receivable.status == Status.None) revert UnknownReceivable(id);
        if (_ownerOf(id) != msg.sender) revert NotHolder(id, msg.sender);
    }
}
